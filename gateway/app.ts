import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository';
import type { RecognitionRules } from '../workflows/recognition/match';
import { FhirError, outcome } from '../store/errors';
import type { PatientIndex } from '../mpi';
import type { Auth } from './auth';
import { officeOnly } from './auth/require';
import { cdsRouter, recognitionOperationRouter } from './cds/routes';
import { exportRouter } from './export/routes';
import type { ExportService } from './export/service';
import { patientIndexRouter } from './fhir/patient-index';
import { fhirRouter, sendJson } from './fhir/routes';
import { importsRouter, type ImportRoutesDeps } from './imports/routes';
import { ingestRouter } from './ingest/routes';
import type { IngestService } from './ingest/service';
import { maskIdNumbers } from './redact';
import { measureReportRouter, workflowMetricsRouter } from './workflows/routes';

export interface AppDeps {
  repo: Repository;
  /** Public base of the FHIR API; derived from each request when unset. */
  baseUrl?: string;
  /** Called with unexpected errors (the client gets a generic OperationOutcome). */
  onError?: (err: unknown) => void;
  /** Receipt of facility records; `/ingest` is mounted when present. */
  ingest?: IngestService;
  /** Batch imports; `/imports` is mounted when present. */
  imports?: Omit<ImportRoutesDeps, 'repo'>;
  /** The patient index: cross-facility reads and its operations when present. */
  mpi?: PatientIndex;
  /**
   * Token endpoints and the middleware every route but the open ones goes through. Without it
   * nothing is verified here, yet nothing is open either: every route still needs
   * `res.locals.principal` and answers 401 without one, so whoever leaves auth out (a test, a
   * benchmark's baseline) must set the principal in front. The gateway process always passes it.
   */
  auth?: Auth;
  /** The queue dashboard (Bull Board), mounted at /admin/queues for the consortium office. */
  admin?: RequestHandler;
  /** The audit trail (`auditTrail`), mounted first on `/fhir`, `/ingest` and `/imports` so that every answer, refusals included, is audited. */
  audit?: RequestHandler;
  /** Per-client rate limit (`rateLimit`) on `/fhir` and `/ingest`; it keys by `res.locals.principal`, so authentication mounts before it. */
  rateLimit?: RequestHandler;
  /** Bulk Data `$export` jobs; the operations are mounted when present. */
  exports?: ExportService;
  /** Largest request body accepted, in bytes; default 20 MB. */
  maxBodyBytes?: number;
  /** Result recognition's windows and equivalents; default workflows/recognition/rules.json. */
  recognitionRules?: RecognitionRules;
  /** The server process serves the websocket channel of Subscriptions (listed in the CapabilityStatement). */
  websocket?: boolean;
}

const API_PATHS = ['/fhir', '/ingest', '/imports', '/cds-services'];

const JSON_TYPES = ['application/json', 'application/fhir+json', 'application/json-patch+json'];

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const limit = deps.maxBodyBytes ?? 20 * 1024 * 1024;
  const { auth } = deps;
  if (auth) app.use(auth.router);
  // Audit first, so that refusals (401, 403) are audited too.
  if (deps.audit) app.use(API_PATHS, deps.audit);
  if (auth) {
    // Guarded by prefix before any router mounts there, so a route added later is never open.
    app.use(['/ingest', '/imports', '/admin', '/workflows', '/cds-services'], auth.authenticate);
    app.use('/fhir', (req, res, next) => ((req.method === 'GET' || req.method === 'HEAD') && req.path === '/metadata' ? next() : auth.authenticate(req, res, next)));
  }
  // After authentication: the limit is per client.
  if (deps.rateLimit) app.use(API_PATHS, deps.rateLimit);
  if (deps.admin) app.use('/admin/queues', officeOnly('The queue dashboard'), deps.admin);
  app.use('/fhir', express.json({ type: JSON_TYPES, limit, strict: true }));
  app.use('/fhir', express.urlencoded({ extended: false, type: 'application/x-www-form-urlencoded', limit }));
  app.use('/cds-services', express.json({ limit, strict: true }), cdsRouter({ repo: deps.repo, mpi: deps.mpi, rules: deps.recognitionRules }));
  app.use('/fhir', recognitionOperationRouter({ repo: deps.repo, mpi: deps.mpi, rules: deps.recognitionRules }));
  if (deps.mpi) app.use('/fhir', patientIndexRouter(deps.repo, deps.mpi, deps.baseUrl));
  // Before the generic routes, which would take `$export` for a type or an id.
  if (deps.exports) app.use('/fhir', exportRouter(deps.repo, deps.exports, deps.baseUrl));
  app.use('/fhir', measureReportRouter(deps.repo));
  app.use('/fhir', fhirRouter(deps.repo, deps.baseUrl, deps.mpi, { tokenUrl: auth?.tokenUrl, bulkExport: deps.exports !== undefined, websocket: deps.websocket }));
  if (deps.ingest) app.use('/ingest', ingestRouter(deps.ingest, String(limit)));
  if (deps.imports) app.use('/imports', importsRouter({ repo: deps.repo, ...deps.imports }));
  app.use('/workflows', workflowMetricsRouter(deps.repo));
  app.use('/fhir', (_req, res) => sendJson(res, 404, outcome([{ severity: 'error', code: 'not-found', diagnostics: 'No such FHIR endpoint' }])));
  app.use(errorHandler(deps.onError));
  return app;
}

/**
 * Every failure leaves as an OperationOutcome; unexpected ones never show their stack, and no
 * answer repeats an ID number (a parse error quotes the body it failed on). Main mounts it on
 * the outer app too, so health, metrics and Bull Board never fall back to Express's HTML page
 * (which shows the stack outside production).
 */
export function errorHandler(onError?: (err: unknown) => void): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    // Already answered (e.g. 503 by the request timeout): the handler's late failure has no one to tell.
    if (res.headersSent) return;
    if (err instanceof FhirError) {
      sendOutcome(res, err.status, err.outcome);
      return;
    }
    const e = err as { type?: string; status?: number; message?: string; limit?: number };
    if (e.type === 'entity.parse.failed') {
      sendOutcome(res, 400, outcome([{ severity: 'error', code: 'structure', diagnostics: `Invalid JSON: ${e.message}` }]));
    } else if (e.type === 'entity.too.large') {
      sendOutcome(res, 413, outcome([{ severity: 'error', code: 'too-costly', diagnostics: `Request body larger than ${e.limit ?? 'the limit of'} bytes (MAX_BODY_BYTES)` }]));
    } else if (e.status && e.status >= 400 && e.status < 500) {
      sendOutcome(res, e.status, outcome([{ severity: 'error', code: 'invalid', diagnostics: e.message ?? 'Bad request' }]));
    } else {
      onError?.(err);
      sendOutcome(res, 500, outcome([{ severity: 'error', code: 'exception', diagnostics: 'Internal server error' }]));
    }
  };
}

function sendOutcome(res: Parameters<typeof sendJson>[0], status: number, body: OperationOutcome): void {
  sendJson(res, status, { ...body, issue: body.issue.map((i) => (i.diagnostics ? { ...i, diagnostics: maskIdNumbers(i.diagnostics) } : i)) });
}
