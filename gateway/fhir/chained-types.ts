import { getParam } from '../../store/search-params';

/**
 * The types a search reaches through its chained parameters (`subject:Patient.name=...`
 * searches Patients): each hop's reference targets, or its `:Type`, that have the next
 * parameter, as the store resolves them. A caller must be allowed to search each of them,
 * or a chain would answer questions about records it may not search.
 */
export function chainedTypes(type: string, params: [string, string][]): string[] {
  const reached = new Set<string>();
  for (const [name] of params) {
    let current = [type];
    let rest = name;
    for (let dot = rest.indexOf('.'); dot > 0; dot = rest.indexOf('.')) {
      const [code, typeModifier] = rest.slice(0, dot).split(':', 2);
      rest = rest.slice(dot + 1);
      const next = rest.split('.')[0].split(':')[0];
      const targets = current.flatMap((t) => {
        const p = getParam(t, code);
        return p?.type === 'reference' ? (typeModifier ? [typeModifier] : p.targets) : [];
      });
      current = [...new Set(targets)].filter((t) => getParam(t, next) || next === '_id' || next === '_lastUpdated');
      for (const t of current) reached.add(t);
    }
  }
  return [...reached];
}
