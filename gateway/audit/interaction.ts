import type { RestInteraction } from '../../store/audit-event';

/** What a request under `/fhir` or `/ingest` did, read from its method, path and body. */
export interface RequestKind {
  interaction: RestInteraction;
  /** The operation's name, e.g. `$everything`. */
  operation?: string;
  /** Resource type the request addressed, when it addressed one. */
  type?: string;
  /** `Type/id` or `Type/id/_history/v`, when the path names an instance. */
  resource?: string;
  /** For `/ingest`, which endpoint (records there are not FHIR resources until applied). */
  detail?: string;
}

const TYPE = /^[A-Z][A-Za-z]+$/;

/**
 * The R4 interaction of a request, from its method and path (`/fhir/...` or `/ingest/...`,
 * without the query string). `undefined` for what is not audited: the CapabilityStatement.
 */
export function describeRequest(method: string, pathname: string, body?: unknown): RequestKind | undefined {
  const parts = pathname.split('/').filter((p) => p !== '').map(safeDecode);
  const [root, ...rest] = parts;
  if (root === 'ingest' || root === 'imports') return describeReceipt(method, root, rest);
  // A CDS Hooks call reads the patient's results, so it is audited like an operation.
  if (root === 'cds-services') return { interaction: 'operation', operation: rest[0] ?? 'cds-discovery', detail: `/${parts.join('/')}` };
  if (root !== 'fhir') return undefined;
  const m = method.toUpperCase();
  const [a, b, c, d] = rest;
  const op = (s: string | undefined): s is string => s !== undefined && s.startsWith('$');

  if (a === undefined) {
    if (m === 'POST') return { interaction: (body as { type?: string } | undefined)?.type === 'batch' ? 'batch' : 'transaction' };
    return { interaction: 'search-system' };
  }
  if (a === 'metadata' && rest.length === 1) return undefined;
  if (op(a)) return { interaction: 'operation', operation: a };
  if (a === '_history') return { interaction: 'history-system' };
  if (!TYPE.test(a)) return { interaction: 'search-system' };
  if (b === undefined) {
    if (m === 'POST') return { interaction: 'create', type: a };
    if (m === 'PUT') return { interaction: 'update', type: a };
    if (m === 'DELETE') return { interaction: 'delete', type: a };
    return { interaction: 'search-type', type: a };
  }
  if (b === '_search') return { interaction: 'search-type', type: a };
  if (b === '_history') return { interaction: 'history-type', type: a };
  if (op(b)) return { interaction: 'operation', operation: b, type: a };
  const instance = `${a}/${b}`;
  if (c === undefined) {
    const interaction: RestInteraction = m === 'PUT' ? 'update' : m === 'PATCH' ? 'patch' : m === 'DELETE' ? 'delete' : 'read';
    return { interaction, type: a, resource: instance };
  }
  if (c === '_history') return d === undefined ? { interaction: 'history-instance', type: a, resource: instance } : { interaction: 'vread', type: a, resource: `${instance}/_history/${d}` };
  return { interaction: 'operation', operation: c, type: a, resource: instance };
}

/** Records sent (`/ingest`) or loaded in batches (`/imports`): audited by path, as they are not FHIR interactions. */
function describeReceipt(method: string, root: string, rest: string[]): RequestKind {
  const detail = `/${[root, ...rest].join('/')}`;
  const last = rest[rest.length - 1];
  if (last?.startsWith('$')) return { interaction: 'operation', operation: last, detail };
  const m = method.toUpperCase();
  return { interaction: m === 'POST' ? 'create' : m === 'DELETE' ? 'delete' : 'read', detail };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
