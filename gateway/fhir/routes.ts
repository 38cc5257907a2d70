import { Router, type Request, type Response } from 'express';
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { processBundle, type BundleResponseEntry } from '../../store/bundle';
import { badRequest, FhirError, notSupported, outcome } from '../../store/errors';
import type { Repository } from '../../store/repository';
import { parseDateRange } from '../../store/fhir-date';
import { encodeCursor, DEFAULT_COUNT, MAX_COUNT, splitValues } from '../../store/search/parse';
import type { Cursor } from '../../store/search/query';
import { isKnownResourceType, resourceTypes } from '../../store/search-params';
import type { StoredResource } from '../../store/stored';
import type { PatientIndex } from '../../mpi';
import { forbiddenFor, mayAccess, principalOf, requireOffice, requireScope, storeFor } from '../auth/require';
import { refusedEntries, withoutRefused } from './bundle-scopes';
import { chainedTypes } from './chained-types';
import { auditPatients } from '../audit/patients';
import { capabilityStatement, type CapabilityOptions } from './capability';
import { expandPersons } from '../../mpi/person-search';
import { checkDepth } from './depth';
import { subset } from './elements';
import { fullUrl, renderBundle, type RenderEntry } from './render';
import { preferHandling, queryPairs, selfUrl, sinceParam } from './request';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/**
 * FHIR R4 REST. Handlers only translate HTTP to repository calls and results back to HTTP;
 * FHIR semantics live in store/.
 */
export function fhirRouter(repo: Repository, configuredBase?: string, mpi?: PatientIndex, capability: Omit<CapabilityOptions, 'patientIndex'> = {}): Router {
  const r = Router();
  const base = (req: Request): string => configuredBase ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`;
  const store = (res: Response): Repository => storeFor(repo, res);

  r.get('/metadata', (req, res) => sendJson(res, 200, capabilityStatement(base(req), { ...capability, patientIndex: mpi !== undefined })));
  r.get('/_history', async (req, res) => {
    // Every type's history includes the AuditEvents.
    requireOffice(res, 'The history of the whole server');
    requireScope(res, '*', 'r');
    await history(req, res, {});
  });

  r.post('/', async (req, res) => {
    const bundle = requireBody(req) as Bundle;
    const refused = refusedEntries(principalOf(res), bundle);
    // A transaction is all or nothing; in a batch each refused entry fails alone.
    if (refused.size > 0 && bundle.type !== 'batch') throw refused.values().next().value!;
    const result = await processBundle(store(res), refused.size > 0 ? withoutRefused(bundle, refused) : bundle);
    for (const [i, err] of refused) result.entries[i] = { status: '403', outcome: err.outcome };
    const b = base(req);
    const entries: RenderEntry[] = result.entries.map((e) => responseEntry(b, e));
    sendText(res, 200, renderBundle({ type: result.type }, entries));
  });

  r.get('/:type', async (req, res) => search(req, res, queryPairs(req)));
  r.post('/:type/_search', async (req, res) => {
    const form = typeof req.body === 'object' && req.body ? Object.entries(req.body as Record<string, string | string[]>) : [];
    const pairs = form.flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, String(x)] as [string, string]) : [[k, String(v)] as [string, string]]));
    await search(req, res, [...queryPairs(req), ...pairs]);
  });

  async function search(req: Request, res: Response, params: [string, string][]): Promise<void> {
    const type = knownType(req.params.type as string);
    const principal = requireScope(res, type, 's');
    for (const t of chainedTypes(type, params)) requireScope(res, t, 's');
    const strict = preferHandling(req) === 'strict';
    const searched = mpi ? await expandPersons(mpi, repo.executor, type, params) : params;
    const { query, ...result } = await store(res).search(type, searched, { strict });
    const b = base(req);
    if (query.summary === 'count') {
      sendText(res, 200, renderBundle({ type: 'searchset', total: result.total, link: [{ relation: 'self', url: selfUrl(req, b) }] }, []));
      return;
    }
    const link = [{ relation: 'self', url: selfUrl(req, b) }];
    const pageUrl = (c: Cursor): string => `${b}/${type}?${new URLSearchParams([...params.filter(([k]) => k !== '_cursor'), ['_cursor', encodeCursor(c)]])}`;
    if (result.next) link.push({ relation: 'next', url: pageUrl(result.next) });
    if (result.previous) link.push({ relation: 'previous', url: pageUrl(result.previous) });
    const shape = (s: StoredResource): string | undefined =>
      query.elements || query.summary ? JSON.stringify(subset(s.resource, { elements: query.elements, summary: query.summary })) : s.json ?? undefined;
    const entries: RenderEntry[] = [
      ...result.matches.map((s) => ({ fullUrl: fullUrl(b, s), json: shape(s), search: { mode: 'match' as const } })),
      // _include and _revinclude reach other types: only those the caller may read come back.
      ...result.included.filter((s) => mayAccess(principal, s.resourceType, 'r')).map((s) => ({ fullUrl: fullUrl(b, s), json: shape(s), search: { mode: 'include' as const } })),
    ];
    if (query.ignored.length > 0) {
      const ignored: OperationOutcome = outcome(
        query.ignored.map((p) => ({ severity: 'warning', code: 'not-supported', diagnostics: `Search parameter '${p}' is not known for ${type} and was ignored`, expression: [p] })),
      );
      entries.push({ json: JSON.stringify(ignored), search: { mode: 'outcome' } });
    }
    // The audit names every patient whose records were returned, not only the one searched for.
    auditPatients(res, () => [...result.matches, ...result.included].flatMap((m) => m.patients));
    sendText(res, 200, renderBundle({ type: 'searchset', total: result.total, link }, entries));
  }

  r.post('/:type', async (req, res) => {
    const type = knownType(req.params.type as string);
    requireScope(res, type, 'c');
    const resource = bodyResource(req, type);
    const ifNoneExist = req.get('If-None-Exist');
    const { status, stored } = await store(res).create(resource, { ifNoneExist: ifNoneExist ? [...new URLSearchParams(ifNoneExist)] : undefined });
    sendStored(req, res, status, stored, base(req));
  });

  // Conditional update: PUT Type?identifier=...
  r.put('/:type', async (req, res) => {
    const type = knownType(req.params.type as string);
    requireScope(res, type, 'u');
    const condition = queryPairs(req);
    if (condition.length === 0) throw badRequest('PUT on a type needs a search condition, or use PUT Type/id');
    const { status, stored } = await store(res).conditionalUpdate(bodyResource(req, type), condition);
    sendStored(req, res, status, stored, base(req));
  });

  r.get('/:type/_history', async (req, res) => history(req, res, { type: readable(res, req.params.type as string) }));

  async function history(req: Request, res: Response, scope: { type?: string; id?: string }): Promise<void> {
    const params = new URLSearchParams(queryPairs(req));
    const count = pageSize(params.get('_count'));
    const since = sinceParam(params);
    const cursor = params.get('_cursor') ? decodeHistoryCursor(params.get('_cursor')!) : undefined;
    const page = await store(res).history(scope, { since, count, cursor });
    const b = base(req);
    const link = [{ relation: 'self', url: selfUrl(req, b) }];
    if (page.next) {
      const next = new URLSearchParams([...params].filter(([k]) => k !== '_cursor'));
      next.set('_cursor', encodeCursor(page.next));
      link.push({ relation: 'next', url: `${b}${req.path}?${next}` });
    }
    const entries: RenderEntry[] = page.entries.map((s) => ({
      fullUrl: fullUrl(b, s),
      json: s.json ?? undefined,
      request: { method: s.deleted ? 'DELETE' : s.versionId === '1' ? 'POST' : 'PUT', url: s.versionId === '1' && !s.deleted ? s.resourceType : s.reference },
      response: { status: s.deleted ? '204' : s.versionId === '1' ? '201' : '200', etag: `W/"${s.versionId}"`, lastModified: s.lastUpdated },
    }));
    sendText(res, 200, renderBundle({ type: 'history', link }, entries));
  }

  r.get('/:type/:id', async (req, res) => {
    const type = readable(res, req.params.type as string);
    sendStored(req, res, 200, await store(res).read(type, req.params.id as string), base(req));
  });

  r.put('/:type/:id', async (req, res) => {
    const type = knownType(req.params.type as string);
    requireScope(res, type, 'u');
    const resource = bodyResource(req, type);
    if (resource.id !== req.params.id) throw badRequest(`Resource id '${resource.id ?? ''}' does not match the URL id '${req.params.id}'`, [`${type}.id`]);
    const { status, stored } = await store(res).update(resource, { ifMatch: ifMatch(req) });
    sendStored(req, res, status, stored, base(req));
  });

  r.delete('/:type/:id', async (req, res) => {
    const type = knownType(req.params.type as string);
    requireScope(res, type, 'd');
    await store(res).delete(type, req.params.id as string, { ifMatch: ifMatch(req) });
    res.status(204).end();
  });

  r.get('/:type/:id/_history', async (req, res) => history(req, res, { type: readable(res, req.params.type as string), id: req.params.id as string }));

  r.get('/:type/:id/_history/:vid', async (req, res) => {
    const stored = await store(res).vread(readable(res, req.params.type as string), req.params.id as string, req.params.vid as string);
    sendStored(req, res, 200, stored, base(req));
  });

  r.get('/:type/:id/:operation', async (req, res) => {
    if (req.params.type !== 'Patient' || req.params.operation !== '$everything') {
      throw notSupported(`Operation ${req.params.type}/${req.params.id}/${req.params.operation} is not supported`);
    }
    const id = req.params.id as string;
    requireScope(res, 'Patient', 'r');
    await store(res).read('Patient', id);
    // The whole person: a golden record or any linked registration brings every facility's records.
    const person = await mpi?.person(repo.executor, id);
    const params = new URLSearchParams(queryPairs(req));
    const since = sinceParam(params);
    const requested = params.get('_type') ? splitValues(params.get('_type')!) : undefined;
    for (const t of requested ?? []) knownType(t);
    const types = everythingTypes(res, requested);
    const count = params.has('_count') ? pageSize(params.get('_count')) : MAX_COUNT;
    const cursor = params.get('_cursor') ? decodeHistoryCursor(params.get('_cursor')!) : undefined;
    const page = await store(res).everything(person ? [person.goldenId, ...person.members] : [id], { since, types, count, cursor });
    const b = base(req);
    const link = [{ relation: 'self', url: selfUrl(req, b) }];
    if (page.next) {
      const next = new URLSearchParams([...params].filter(([k]) => k !== '_cursor'));
      next.set('_cursor', encodeCursor(page.next));
      link.push({ relation: 'next', url: `${b}/Patient/${id}/$everything?${next}` });
    }
    sendText(res, 200, renderBundle({ type: 'searchset', link }, page.entries.map((s) => ({ fullUrl: fullUrl(b, s), json: s.json ?? undefined, search: { mode: 'match' } }))));
  });

  return r;
}

/** A known type the caller may read (read, vread, history). */
function readable(res: Response, type: string): string {
  requireScope(res, knownType(type), 'r');
  return type;
}

/**
 * The types `$everything` may return: those asked for, each of which the caller must be
 * allowed to read, or else every type it may read (no filter when that is all of them).
 */
function everythingTypes(res: Response, requested: string[] | undefined): string[] | undefined {
  const p = principalOf(res);
  if (requested) {
    for (const t of requested) if (!mayAccess(p, t, 'r')) throw forbiddenFor(p, t, 'r');
    return requested;
  }
  const all = resourceTypes();
  const allowed = all.filter((t) => mayAccess(p, t, 'r'));
  return allowed.length === all.length ? undefined : allowed;
}

function knownType(type: string): string {
  if (!isKnownResourceType(type)) throw new FhirError(404, 'not-supported', `Unknown resource type '${type}'`);
  return type;
}

function requireBody(req: Request): unknown {
  if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body) || Object.keys(req.body as object).length === 0) {
    throw badRequest('The request body must be a FHIR resource in JSON (Content-Type: application/fhir+json)');
  }
  const type = (req.body as { resourceType?: unknown }).resourceType;
  checkDepth(req.body, typeof type === 'string' ? type : 'resource');
  return req.body;
}

function bodyResource(req: Request, type: string): Resource {
  const resource = requireBody(req) as Resource;
  if (resource.resourceType !== type) throw badRequest(`Expected a ${type}, got resourceType '${String(resource.resourceType)}'`, ['resourceType']);
  return resource;
}

function ifMatch(req: Request): string | undefined {
  const h = req.get('If-Match');
  if (!h) return undefined;
  const m = /^(?:W\/)?"?([^"]+)"?$/.exec(h.trim());
  if (!m) throw badRequest(`If-Match must be an ETag like W/"3", got '${h}'`);
  return m[1];
}

function pageSize(value: string | null): number {
  if (value === null) return DEFAULT_COUNT;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw badRequest(`_count must be a positive integer, got '${value}'`, ['_count']);
  return Math.min(n, MAX_COUNT);
}

/** History cursors hold [lastUpdated, version] (the SQL casts both); $everything's hold none. */
function decodeHistoryCursor(value: string): Cursor {
  try {
    const [values, rk] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as [(string | number)[], number];
    if (!Array.isArray(values) || !Number.isSafeInteger(rk)) throw new Error('shape');
    const [lastUpdated, version] = values;
    if (values.length > 0 && (values.length !== 2 || typeof lastUpdated !== 'string' || !parseDateRange(lastUpdated) || !Number.isSafeInteger(version))) throw new Error('values');
    return { values, rk, direction: 'next' };
  } catch {
    throw badRequest('Invalid _cursor: use the next link as given', ['_cursor']);
  }
}

function sendStored(req: Request, res: Response, status: number, stored: StoredResource, base: string): void {
  if (!stored.deleted) auditPatients(res, () => stored.patients);
  res.set('ETag', `W/"${stored.versionId}"`);
  res.set('Last-Modified', new Date(stored.lastUpdated).toUTCString());
  if (status === 201) res.set('Location', `${base}/${stored.reference}/_history/${stored.versionId}`);
  const prefer = /return=(minimal|representation|OperationOutcome)/.exec(req.get('Prefer') ?? '')?.[1];
  if (prefer === 'minimal') {
    res.status(status).end();
    return;
  }
  if (prefer === 'OperationOutcome') {
    sendJson(res, status, outcome([{ severity: 'information', code: 'informational', diagnostics: `${stored.reference} is at version ${stored.versionId}` }]));
    return;
  }
  sendText(res, status, stored.json ?? '');
}

function responseEntry(base: string, e: BundleResponseEntry): RenderEntry {
  const response = { status: e.status, location: e.location, etag: e.etag, lastModified: e.lastModified, outcome: e.outcome };
  if (e.searchset) {
    const inner = renderBundle({ type: 'searchset', total: e.searchset.length }, e.searchset.map((s) => ({ fullUrl: fullUrl(base, s), json: s.json ?? undefined, search: { mode: 'match' } })));
    return { json: inner, response };
  }
  return { fullUrl: e.stored ? fullUrl(base, e.stored) : undefined, json: e.stored?.json ?? undefined, response };
}

export function sendJson(res: Response, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body));
}

function sendText(res: Response, status: number, body: string): void {
  res.status(status).type(FHIR_JSON).send(body);
}
