import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { buildAuditEvent, type AuditInput } from '../../store/audit-event';
import type { IdentifiedAuditEvent } from '../../workers/audit';
import type { Principal } from '../auth/principal';
import { describeRequest, type RequestKind } from './interaction';
import { patientsOf, patientsOfSearch } from './patients';

export interface AuditTrailOptions {
  /** The gateway as the audit names it: source.observer and the Destination Role agent. */
  observer: AuditInput['observer'];
  /** Told of a failure to build an event (a bug: the request itself is already answered). */
  onError?: (err: unknown) => void;
}

/**
 * One AuditEvent per request under `/fhir` (but `metadata`) and `/ingest`, handed to the
 * recorder once the response is sent (or the connection is lost first), so the audit never
 * delays an answer. The caller comes from `res.locals.principal` (absent: an anonymous
 * attempt); the patients from `res.locals.auditPatients` (`Patient/id`, set by handlers with
 * `patientsOf`), from a Patient instance in the path, the body of a write, and the
 * patient/subject parameters of a search.
 */
export function auditTrail(recorder: { record(event: IdentifiedAuditEvent): void }, opts: AuditTrailOptions): RequestHandler {
  return (req, res, next) => {
    const path = pathOf(req);
    if (describeRequest(req.method, path) === undefined) {
      next();
      return;
    }
    // Tells handlers someone is listening: without a trail, auditPatients does no work.
    res.locals.auditPatients = [];
    let done = false;
    const emit = (status: number | undefined): void => {
      if (done) return;
      done = true;
      try {
        recorder.record(eventFor(req, res, path, status, opts));
      } catch (err) {
        // Thrown from an event listener it would take the process down.
        opts.onError?.(err);
      }
    };
    res.once('finish', () => emit(res.statusCode));
    res.once('close', () => emit(res.writableFinished ? res.statusCode : undefined));
    next();
  };
}

function eventFor(req: Request, res: Response, path: string, status: number | undefined, opts: AuditTrailOptions): IdentifiedAuditEvent {
  const kind = describeRequest(req.method, path, req.body)!;
  const principal = res.locals.principal as Principal | undefined;
  const resource = kind.resource ?? createdResource(kind, res);
  const params = kind.interaction === 'search-type' ? searchParams(req) : undefined;
  const patients = new Set<string>(Array.isArray(res.locals.auditPatients) ? (res.locals.auditPatients as string[]) : []);
  if (resource?.startsWith('Patient/')) patients.add(resource.split('/').slice(0, 2).join('/'));
  if (params) for (const p of patientsOfSearch(kind.type!, params)) patients.add(p);
  if (isWrite(kind) && req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) for (const p of patientsOf([req.body])) patients.add(p);
  return buildAuditEvent({
    id: randomUUID(),
    recorded: new Date().toISOString(),
    what: { interaction: kind.interaction, operation: kind.operation },
    status,
    client: { id: principal?.clientId, facility: principal?.facility, address: req.ip },
    user: principal?.user,
    breakGlass: principal?.access?.breakGlass,
    resource,
    patients: [...patients],
    query: params ? `${kind.type}?${new URLSearchParams(params)}` : undefined,
    observer: opts.observer,
    detail: kind.detail,
  }) as IdentifiedAuditEvent;
}

function pathOf(req: Request): string {
  const q = req.originalUrl.indexOf('?');
  return q < 0 ? req.originalUrl : req.originalUrl.slice(0, q);
}

function isWrite(kind: RequestKind): boolean {
  return ['create', 'update', 'patch', 'transaction', 'batch'].includes(kind.interaction);
}

/** The new resource's `Type/id/_history/v`, from the Location of a 201. */
function createdResource(kind: RequestKind, res: Response): string | undefined {
  if (kind.type === undefined) return undefined;
  const location = res.get('Location');
  const m = location ? new RegExp(`(${kind.type}/[A-Za-z0-9\\-.]{1,64}(?:/_history/[A-Za-z0-9\\-.]{1,64})?)$`).exec(location) : null;
  return m?.[1];
}

/** A search's parameters: the query string, and the form body of `POST _search`. */
function searchParams(req: Request): [string, string][] {
  const q = req.originalUrl.indexOf('?');
  const pairs: [string, string][] = q < 0 ? [] : [...new URLSearchParams(req.originalUrl.slice(q + 1))];
  if (req.method === 'POST' && req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) {
    for (const [k, v] of Object.entries(req.body as Record<string, unknown>)) for (const x of Array.isArray(v) ? v : [v]) pairs.push([k, String(x)]);
  }
  return pairs;
}
