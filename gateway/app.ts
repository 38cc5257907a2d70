import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Repository } from '../store/repository';
import { FhirError, outcome } from '../store/errors';
import type { PatientIndex } from '../mpi';
import type { Auth } from './auth';
import { officeOnly } from './auth/require';
import { patientIndexRouter } from './fhir/patient-index';
import { fhirRouter, sendJson } from './fhir/routes';
import { ingestRouter } from './ingest/routes';
import type { IngestService } from './ingest/service';

export interface AppDeps {
  repo: Repository;
  /** Public base of the FHIR API; derived from each request when unset. */
  baseUrl?: string;
  /** Called with unexpected errors (the client gets a generic OperationOutcome). */
  onError?: (err: unknown) => void;
  /** Receipt of facility records; `/ingest` is mounted when present. */
  ingest?: IngestService;
  /** The patient index: cross-facility reads and its operations when present. */
  mpi?: PatientIndex;
  /** Token endpoints and the middleware every route but the open ones goes through. */
  auth: Auth;
  /** The queue dashboard (Bull Board), mounted at /admin/queues for the consortium office. */
  admin?: RequestHandler;
}

const JSON_TYPES = ['application/json', 'application/fhir+json', 'application/json-patch+json'];

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(deps.auth.router);
  // Guarded by prefix before any router mounts there, so a route added later is never open.
  app.use(['/ingest', '/imports', '/admin'], deps.auth.authenticate);
  app.use('/fhir', (req, res, next) => ((req.method === 'GET' || req.method === 'HEAD') && req.path === '/metadata' ? next() : deps.auth.authenticate(req, res, next)));
  if (deps.admin) app.use('/admin/queues', officeOnly('The queue dashboard'), deps.admin);
  app.use('/fhir', express.json({ type: JSON_TYPES, limit: '50mb', strict: true }));
  app.use('/fhir', express.urlencoded({ extended: false, type: 'application/x-www-form-urlencoded' }));
  if (deps.mpi) app.use('/fhir', patientIndexRouter(deps.repo, deps.mpi, deps.baseUrl));
  app.use('/fhir', fhirRouter(deps.repo, deps.baseUrl, deps.mpi, deps.auth.tokenUrl));
  if (deps.ingest) app.use('/ingest', ingestRouter(deps.ingest));
  app.use('/fhir', (_req, res) => sendJson(res, 404, outcome([{ severity: 'error', code: 'not-found', diagnostics: 'No such FHIR endpoint' }])));
  app.use(errorHandler(deps.onError));
  return app;
}

/** Every failure leaves as an OperationOutcome; unexpected ones never show their stack. */
function errorHandler(onError?: (err: unknown) => void): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    if (err instanceof FhirError) {
      sendJson(res, err.status, err.outcome);
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed') {
      sendJson(res, 400, outcome([{ severity: 'error', code: 'structure', diagnostics: `Invalid JSON: ${e.message}` }]));
    } else if (e.type === 'entity.too.large') {
      sendJson(res, 413, outcome([{ severity: 'error', code: 'too-costly', diagnostics: 'Request body too large' }]));
    } else if (e.status && e.status >= 400 && e.status < 500) {
      sendJson(res, e.status, outcome([{ severity: 'error', code: 'invalid', diagnostics: e.message ?? 'Bad request' }]));
    } else {
      onError?.(err);
      sendJson(res, 500, outcome([{ severity: 'error', code: 'exception', diagnostics: 'Internal server error' }]));
    }
  };
}
