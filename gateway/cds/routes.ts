/**
 * Result recognition over HTTP: CDS Hooks (`/cds-services`) and the FHIR operation
 * `ServiceRequest/$recognition`. Handlers only check input and translate; the decisions live
 * in workflows/recognition.
 */
import { Router, type Response } from 'express';
import type { Bundle, ServiceRequest } from '@medplum/fhirtypes';
import type { PatientIndex } from '../../mpi';
import { badRequest } from '../../store/errors';
import type { Repository } from '../../store/repository';
import { requireScope, storeFor } from '../auth/require';
import { auditPatients, patientsOf } from '../audit/patients';
import { parametersBody } from '../fhir/params';
import { sendJson } from '../fhir/routes';
import { cardsFor, parametersFor } from '../../workflows/recognition/answer';
import { findRecognised, personIds, type Found } from '../../workflows/recognition/lookup';
import { DEFAULT_RULES, type RecognitionRules } from '../../workflows/recognition/match';

const HOOKS = ['order-select', 'order-sign'] as const;
const serviceId = (hook: string): string => `result-recognition-${hook}`;

export interface RecognitionDeps {
  repo: Repository;
  mpi?: PatientIndex;
  rules?: RecognitionRules;
  now?: () => Date;
}

async function answer(deps: RecognitionDeps, res: Response, patientId: string, orders: ServiceRequest[]): Promise<Found[]> {
  requireScope(res, 'Observation', 's');
  requireScope(res, 'DiagnosticReport', 's');
  const ids = await personIds(deps.repo, deps.mpi, patientId);
  const found = await findRecognised(storeFor(deps.repo, res), ids, orders, (deps.now ?? (() => new Date()))(), deps.rules ?? DEFAULT_RULES);
  auditPatients(res, () => patientsOf([{ resourceType: 'Patient', id: patientId }, ...found.map((f) => f.result)]));
  return found;
}

export function cdsRouter(deps: RecognitionDeps): Router {
  const r = Router();
  r.get('/', (_req, res) => {
    res.status(200).json({
      services: HOOKS.map((hook) => ({
        hook,
        id: serviceId(hook),
        title: 'Result recognition (检查结果互认)',
        description: 'Names results the consortium already holds for the patient that stand in for the draft orders.',
        prefetch: { patient: 'Patient/{{context.patientId}}' },
      })),
    });
  });
  r.post('/:id', async (req, res) => {
    const hook = HOOKS.find((h) => serviceId(h) === req.params.id);
    if (!hook) throw badRequest(`No CDS service '${req.params.id}'`);
    const body = req.body as { hook?: string; hookInstance?: string; context?: { patientId?: unknown; draftOrders?: Bundle; selections?: unknown } } | undefined;
    const ctx = body?.context;
    if (!ctx || typeof ctx !== 'object') throw badRequest('context is required', ['context']);
    if (typeof ctx.patientId !== 'string' || ctx.patientId === '') throw badRequest('context.patientId is required', ['context.patientId']);
    const bundle = ctx.draftOrders;
    if (!bundle || bundle.resourceType !== 'Bundle') throw badRequest('context.draftOrders must be a Bundle of ServiceRequests', ['context.draftOrders']);
    let orders = (bundle.entry ?? []).map((e) => e.resource).filter((x): x is ServiceRequest => x?.resourceType === 'ServiceRequest');
    // order-select asks only about what the clinician just selected.
    if (hook === 'order-select' && Array.isArray(ctx.selections)) {
      const selected = new Set(ctx.selections as string[]);
      orders = orders.filter((o) => selected.has(`ServiceRequest/${o.id}`));
    }
    const found = await answer(deps, res, ctx.patientId, orders);
    res.status(200).json({ cards: cardsFor(found) });
  });
  return r;
}

/** `POST /fhir/ServiceRequest/$recognition` with `order` ServiceRequests, or on a stored one. */
export function recognitionOperationRouter(deps: RecognitionDeps): Router {
  const r = Router();
  const subjectOf = (o: ServiceRequest): string => {
    const ref = o.subject?.reference;
    if (!ref?.startsWith('Patient/')) throw badRequest('$recognition: each order needs subject Patient/{id}', ['ServiceRequest.subject']);
    return ref.slice('Patient/'.length);
  };
  r.post('/ServiceRequest/\\$recognition', async (req, res) => {
    const orders = parametersBody(req.body, '$recognition')
      .filter((p) => p.name === 'order')
      .map((p) => p.resource as ServiceRequest | undefined);
    if (orders.length === 0 || orders.some((o) => o?.resourceType !== 'ServiceRequest')) throw badRequest("$recognition needs one or more 'order' parameters holding a ServiceRequest", ['Parameters.parameter']);
    const found: Found[] = [];
    for (const o of orders as ServiceRequest[]) found.push(...(await answer(deps, res, subjectOf(o), [o])));
    sendJson(res, 200, parametersFor(found));
  });
  r.post('/ServiceRequest/:id/\\$recognition', async (req, res) => {
    requireScope(res, 'ServiceRequest', 'r');
    const order = (await storeFor(deps.repo, res).read('ServiceRequest', req.params.id as string)).resource as ServiceRequest;
    sendJson(res, 200, parametersFor(await answer(deps, res, subjectOf(order), [order])));
  });
  return r;
}
