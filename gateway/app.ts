import express, { type ErrorRequestHandler, type Express } from 'express';
import type { Repository } from '../store/repository';
import { FhirError, outcome } from '../store/errors';
import type { PatientIndex } from '../mpi';
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
}

const JSON_TYPES = ['application/json', 'application/fhir+json', 'application/json-patch+json'];

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use('/fhir', express.json({ type: JSON_TYPES, limit: '50mb', strict: true }));
  app.use('/fhir', express.urlencoded({ extended: false, type: 'application/x-www-form-urlencoded' }));
  if (deps.mpi) app.use('/fhir', patientIndexRouter(deps.repo, deps.mpi, deps.baseUrl));
  app.use('/fhir', fhirRouter(deps.repo, deps.baseUrl, deps.mpi));
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
