import type { Resource } from '@medplum/fhirtypes';

const ALWAYS = new Set(['resourceType', 'id', 'meta']);
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

/** `_elements` and `_summary=data|text`: a reduced copy, tagged SUBSETTED as FHIR requires. */
export function subset(resource: Resource, opts: { elements?: string[]; summary?: 'data' | 'text' | 'count' }): Resource {
  let keep: (key: string) => boolean;
  if (opts.elements) {
    const wanted = new Set(opts.elements.map((e) => e.split('.').pop()!));
    keep = (k) => ALWAYS.has(k) || wanted.has(k);
  } else if (opts.summary === 'text') {
    keep = (k) => ALWAYS.has(k) || k === 'text';
  } else if (opts.summary === 'data') {
    keep = (k) => k !== 'text';
  } else {
    return resource;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resource)) if (keep(k)) out[k] = v;
  const meta = (out.meta ?? {}) as { tag?: unknown[] };
  out.meta = { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] };
  return out as unknown as Resource;
}
