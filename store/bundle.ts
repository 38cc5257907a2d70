import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, notSupported, preconditionFailed } from './errors';
import { isKnownResourceType } from './search-params';
import type { Repository, WriteIntent, WriteOutcome } from './repository';
import type { StoredResource } from './stored';

export interface BundleResponseEntry {
  status: string;
  location?: string;
  etag?: string;
  lastModified?: string;
  /** The resource written or read. */
  stored?: StoredResource;
  /** A nested searchset for GET searches inside a batch/transaction. */
  searchset?: StoredResource[];
  outcome?: OperationOutcome;
}

export interface BundleResult {
  type: 'transaction-response' | 'batch-response';
  entries: BundleResponseEntry[];
}

interface ParsedRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  type: string;
  id?: string;
  versionId?: string;
  /** Search parameters of a conditional request or a GET search. */
  query?: [string, string][];
}

/** Processes a batch (entries independent) or transaction (all or nothing) Bundle. */
export async function processBundle(repo: Repository, bundle: Bundle): Promise<BundleResult> {
  if (bundle?.resourceType !== 'Bundle') throw badRequest('Expected a Bundle', ['resourceType']);
  const entries = bundle.entry ?? [];
  // The Bundle itself is not schema-validated (only its resources are): check the shape its processing relies on.
  if (!Array.isArray(entries)) throw badRequest('Bundle.entry must be an array', ['Bundle.entry']);
  entries.forEach(checkEntryShape);
  if (bundle.type === 'transaction') return processTransaction(repo, entries);
  if (bundle.type === 'batch') return processBatch(repo, entries);
  throw badRequest(`Bundle.type must be 'transaction' or 'batch', got '${bundle.type}'`, ['Bundle.type']);
}

function checkEntryShape(entry: unknown, i: number): void {
  const at = `Bundle.entry[${i}]`;
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw badRequest(`${at} must be an object`, [at]);
  const { fullUrl, request } = entry as Record<string, unknown>;
  if (fullUrl !== undefined && typeof fullUrl !== 'string') throw badRequest(`${at}.fullUrl must be a string`, [`${at}.fullUrl`]);
  if (request !== undefined && (!request || typeof request !== 'object')) throw badRequest(`${at}.request must be an object`, [`${at}.request`]);
  for (const field of ['method', 'url', 'ifMatch', 'ifNoneExist'] as const) {
    const v = (request as Record<string, unknown> | undefined)?.[field];
    if (v !== undefined && typeof v !== 'string') throw badRequest(`${at}.request.${field} must be a string`, [`${at}.request.${field}`]);
  }
}

function parseRequest(entry: BundleEntry, i: number): ParsedRequest {
  const at = `Bundle.entry[${i}].request`;
  const method = entry.request?.method;
  const url = entry.request?.url;
  if (!method || !url) throw badRequest(`${at} needs method and url`, [at]);
  if (!['GET', 'POST', 'PUT', 'DELETE'].includes(method)) throw notSupported(`${at}.method ${method} is not supported`);
  const [path, qs] = url.replace(/^\//, '').split('?', 2);
  const [type, id, history, versionId] = path.split('/');
  if (!isKnownResourceType(type)) throw badRequest(`${at}.url: unknown resource type '${type}'`, [`${at}.url`]);
  if (history !== undefined && (history !== '_history' || method !== 'GET')) throw badRequest(`${at}.url '${url}' is not supported`, [`${at}.url`]);
  const query = qs !== undefined ? [...new URLSearchParams(qs)] : undefined;
  return { method: method as ParsedRequest['method'], type, id: id || undefined, versionId, query };
}

function requireResource(entry: BundleEntry, req: ParsedRequest, i: number): Resource {
  const r = entry.resource;
  if (!r) throw badRequest(`Bundle.entry[${i}].resource is required for ${req.method}`, [`Bundle.entry[${i}].resource`]);
  if (r.resourceType !== req.type) throw badRequest(`Bundle.entry[${i}].resource is a ${r.resourceType}, the request url names ${req.type}`, [`Bundle.entry[${i}].resource.resourceType`]);
  return r;
}

const etagVersion = (etag: string | undefined): string | undefined => etag?.replace(/^W\//, '').replace(/"/g, '') || undefined;

/** `first` is the index of entries[0] in the client's Bundle, so errors name the right entry. */
async function processTransaction(repo: Repository, entries: BundleEntry[], first = 0): Promise<BundleResult> {
  return repo.transaction(async (tx) => {
    const requests = entries.map((e, i) => parseRequest(e, first + i));
    const resolved = new Map<string, string>(); // fullUrl -> Type/id
    const responses: (BundleResponseEntry | undefined)[] = new Array(entries.length);
    const writes: { index: number; intent: WriteIntent }[] = [];

    // Work out every entry's target first: ids for creates, matches for conditionals.
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const req = requests[i];
      const at = (msg: string): string => `Bundle.entry[${first + i}]: ${msg}`;
      if (req.method === 'GET') continue;
      if (req.method === 'DELETE') {
        let id = req.id;
        if (!id && req.query) id = (await tx.findForCondition(req.type, req.query, at('conditional delete')))?.id;
        if (!id) {
          responses[i] = { status: '204 No Content' };
          continue;
        }
        writes.push({ index: i, intent: { method: 'delete', type: req.type, id, ifMatch: etagVersion(entry.request?.ifMatch) } });
        continue;
      }
      const resource = requireResource(entry, req, first + i);
      let id: string;
      let method: WriteIntent['method'];
      if (req.method === 'POST') {
        if (entry.request?.ifNoneExist) {
          const existing = await tx.findForCondition(req.type, [...new URLSearchParams(entry.request.ifNoneExist)], at('If-None-Exist'));
          if (existing) {
            if (entry.fullUrl) resolved.set(entry.fullUrl, existing.reference);
            responses[i] = { status: '200 OK', location: `${existing.reference}/_history/${existing.versionId}`, etag: `W/"${existing.versionId}"`, stored: existing };
            continue;
          }
        }
        id = randomUUID();
        method = 'create';
      } else if (req.query) {
        const existing = await tx.findForCondition(req.type, req.query, at('conditional update'));
        id = existing?.id ?? resource.id ?? randomUUID();
        method = 'update';
      } else {
        if (!req.id) throw badRequest(at('PUT needs Type/id or a condition'), [`Bundle.entry[${first + i}].request.url`]);
        if (resource.id && resource.id !== req.id) throw badRequest(at(`resource id ${resource.id} does not match the url id ${req.id}`), [`Bundle.entry[${first + i}].resource.id`]);
        id = req.id;
        method = 'update';
      }
      if (entry.fullUrl) resolved.set(entry.fullUrl, `${req.type}/${id}`);
      writes.push({ index: i, intent: { method, type: req.type, id, resource, ifMatch: etagVersion(entry.request?.ifMatch) } });
    }

    // Rewrite urn:uuid and conditional references now that every target is known.
    for (const w of writes) {
      if (w.intent.resource) w.intent.resource = { ...(await rewriteReferences(tx, w.intent.resource, resolved, first + w.index)), id: w.intent.id };
    }

    const outcomes = await tx.applyWrites(writes.map((w) => ({ ...w.intent, at: `Bundle.entry[${first + w.index}].resource` })));
    // applyWrites skips deletes of absent resources; line outcomes up by reference.
    const byRef = new Map(outcomes.map((o) => [o.stored.reference, o]));
    for (const w of writes) {
      const o = byRef.get(`${w.intent.type}/${w.intent.id}`);
      responses[w.index] = o ? writeResponse(o) : { status: '204 No Content' };
    }
    for (let i = 0; i < entries.length; i++) {
      if (requests[i].method === 'GET') responses[i] = await readEntry(tx, requests[i]);
    }
    return { type: 'transaction-response', entries: responses as BundleResponseEntry[] };
  });
}

async function processBatch(repo: Repository, entries: BundleEntry[]): Promise<BundleResult> {
  const out: BundleResponseEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    try {
      const result = await processTransaction(repo, [entries[i]], i);
      out.push(result.entries[0]);
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      out.push({ status: `${err.status}`, outcome: err.outcome });
    }
  }
  return { type: 'batch-response', entries: out };
}

function writeResponse(o: WriteOutcome): BundleResponseEntry {
  const s = o.stored;
  if (o.status === 204) return { status: '204 No Content' };
  return {
    status: o.status === 201 ? '201 Created' : '200 OK',
    location: `${s.reference}/_history/${s.versionId}`,
    etag: `W/"${s.versionId}"`,
    lastModified: s.lastUpdated,
    stored: s,
  };
}

async function readEntry(repo: Repository, req: ParsedRequest): Promise<BundleResponseEntry> {
  if (req.id) {
    const stored = req.versionId ? await repo.vread(req.type, req.id, req.versionId) : await repo.read(req.type, req.id);
    return { status: '200 OK', etag: `W/"${stored.versionId}"`, lastModified: stored.lastUpdated, stored };
  }
  const result = await repo.search(req.type, req.query ?? []);
  return { status: '200 OK', searchset: result.matches };
}

/**
 * Rewrites every `reference` that names a bundle entry's fullUrl or a conditional search.
 * Most references (mapped messages, loads) are already `Type/id`: those resources are passed
 * through uncopied.
 */
async function rewriteReferences(repo: Repository, resource: Resource, resolved: Map<string, string>, index: number): Promise<Resource> {
  const replacements = new Map<string, string>();
  for (const ref of collectReferences(resource)) {
    if (replacements.has(ref)) continue;
    const mapped = resolved.get(ref);
    if (mapped) {
      if (mapped !== ref) replacements.set(ref, mapped);
    } else if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) {
      throw badRequest(`Bundle.entry[${index}]: reference ${ref} names no entry of this transaction`, [`Bundle.entry[${index}].resource`]);
    } else if (/^[A-Z][A-Za-z]+\?/.test(ref)) {
      const [type, qs] = ref.split('?', 2);
      const match = await repo.search(type, [...new URLSearchParams(qs)], { strict: true }, 2);
      if (match.matches.length !== 1) {
        throw preconditionFailed(`Bundle.entry[${index}]: conditional reference ${ref} matched ${match.matches.length} resources, not one`);
      }
      replacements.set(ref, match.matches[0].reference);
    }
  }
  if (replacements.size === 0) return resource;
  const copy = structuredClone(resource);
  for (const holder of referenceHolders(copy)) holder.reference = replacements.get(holder.reference) ?? holder.reference;
  return copy;
}

function collectReferences(node: unknown): string[] {
  return referenceHolders(node).map((h) => h.reference);
}

function referenceHolders(node: unknown, out: { reference: string }[] = []): { reference: string }[] {
  if (Array.isArray(node)) for (const v of node) referenceHolders(v, out);
  else if (node && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    if (typeof obj.reference === 'string') out.push(obj as { reference: string });
    for (const v of Object.values(obj)) if (v && typeof v === 'object') referenceHolders(v, out);
  }
  return out;
}
