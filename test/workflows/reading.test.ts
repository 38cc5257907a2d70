/**
 * Remote reading (远程心电) and the office's workflow figures, over the API with real tokens and
 * PostgreSQL: the community centre (C) records an ECG and asks the city hospital (A) to read
 * it; the hospital accepts from its queue, signs the report and completes the Task; the centre
 * reads the signed report, and each end is notified over a rest-hook: the hospital of the
 * reading in its queue, the centre of the signed report. The figures then count the reading, its turnaround by priority, and
 * an up-referral the hospital accepted. All persons synthetic.
 */
import request from 'supertest';
import type { Bundle, DiagnosticReport, MeasureReport, Task } from '@medplum/fhirtypes';
import { createApp } from '../../gateway/app';
import { monthPeriod } from '../../gateway/workflows/routes';
import { DIRECTION, SNOMED_REFERRAL, TASK_CODE, WORKFLOW_CATEGORY } from '../../profiles/referral';
import { attachWorkflows } from '../../workflows/attach';
import type { WorkflowFigures } from '../../workflows/referral/metrics';
import { agentFor, OFFICE, testAuth } from '../support/auth';
import { openIndexedStore } from '../support/mpi';
import { restHook, startHookReceiver, subscribe, testNotifications, type HookReceiver } from '../support/notify';
import { facilityPatient, mrnSystem } from '../support/people';
import type { TestStore } from '../support/stores';

const FHIR = 'application/fhir+json';
const A = 'city-hospital';
const C = 'community-centre-a';
const ECG = { system: 'http://loinc.org', code: '11524-6', display: 'EKG study' };

function workflowBundle(kind: 'reading' | 'up', supportingInfo: string[]): Bundle {
  const category = kind === 'reading' ? [{ coding: [WORKFLOW_CATEGORY.reading] }] : [{ coding: [SNOMED_REFERRAL] }, { coding: [WORKFLOW_CATEGORY.referral, DIRECTION.up] }];
  const urn = `urn:uuid:7a1e0c3e-0000-4000-8000-00000000000${kind === 'reading' ? 1 : 2}`;
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: urn,
        request: { method: 'POST', url: 'ServiceRequest' },
        resource: {
          resourceType: 'ServiceRequest',
          meta: { source: `urn:facility:${C}` },
          status: 'active',
          intent: 'order',
          category,
          code: { coding: [kind === 'reading' ? ECG : SNOMED_REFERRAL] },
          priority: 'stat',
          subject: { reference: 'Patient/pc' },
          authoredOn: '2026-12-01T10:00:00+08:00',
          requester: { reference: `Organization/${C}` },
          performer: [{ reference: `Organization/${A}` }],
          supportingInfo: supportingInfo.map((reference) => ({ reference })),
        },
      },
      {
        request: { method: 'POST', url: 'Task' },
        resource: {
          resourceType: 'Task',
          status: 'requested',
          intent: 'order',
          code: { coding: [TASK_CODE] },
          priority: 'stat',
          focus: { reference: urn },
          for: { reference: 'Patient/pc' },
          requester: { reference: `Organization/${C}` },
          owner: { reference: `Organization/${A}` },
        },
      },
    ],
  };
}

describe('remote reading and workflow figures (PostgreSQL, tokens)', () => {
  let store: TestStore;
  let hooks: HookReceiver;
  let notifications: ReturnType<typeof testNotifications>;
  const agents: Record<string, request.Agent> = {};

  const send = async (who: string, method: 'put' | 'post', path: string, body: object, status: number) => {
    const res = await agents[who][method](path).set('Content-Type', FHIR).send(body);
    expect([res.status, res.body.issue]).toEqual([status, undefined]);
    return res.body;
  };
  const move = async (who: string, id: string, change: Partial<Task>) => {
    const current = (await agents[who].get(`/fhir/Task/${id}`).expect(200)).body as Task;
    await send(who, 'put', `/fhir/Task/${id}`, { ...current, ...change }, 200);
  };
  const submit = async (bundle: Bundle) => {
    const out = (await send(C, 'post', '/fhir', bundle, 200)) as Bundle;
    return out.entry!.map((e) => e.response!.location!.split('/')[1]);
  };

  beforeAll(async () => {
    store = await openIndexedStore('postgres', { access: { mrnSystems: { [mrnSystem(A)]: A, [mrnSystem(C)]: C } } });
    attachWorkflows(store.repo);
    const app = createApp({ repo: store.repo, auth: await testAuth() });
    for (const f of [A, C, OFFICE]) agents[f] = await agentFor(app, f);
    await send(C, 'put', '/fhir/Patient/pc', facilityPatient('pc', { name: '周玉珍', gender: 'female', birthDate: '1955-07-21' }, C), 201);
    hooks = await startHookReceiver();
    notifications = testNotifications(store);
  });
  afterAll(async () => {
    await notifications.stop();
    await hooks.close();
    await store.close();
  });

  it('the centre asks, the hospital reads from its queue and signs, the centre gets the report; the office sees the figures', async () => {
    const draft: DiagnosticReport = { resourceType: 'DiagnosticReport', id: 'pc-ecg', status: 'preliminary', code: { coding: [ECG] }, subject: { reference: 'Patient/pc' }, presentedForm: [{ contentType: 'application/pdf', title: '12导联心电图', data: Buffer.from('%PDF-1.4 synthetic').toString('base64') }] };
    await subscribe(agents[A], `Task?owner=Organization/${A}&status=requested`, restHook(hooks, '/reading-queue'));
    await subscribe(agents[C], 'DiagnosticReport?subject=Patient/pc&status=final', restHook(hooks, '/centre-reports'));
    await send(C, 'put', '/fhir/DiagnosticReport/pc-ecg', draft, 201);
    const [sr, task] = await submit(workflowBundle('reading', ['DiagnosticReport/pc-ecg']));
    await hooks.next((h) => h.path === `/reading-queue/Task/${task}`, 'the reading request at the hospital');

    const queue = (await agents[A].get(`/fhir/Task?owner=Organization/${A}&status=requested&_include=Task:focus`).expect(200)).body as Bundle;
    expect(queue.entry?.map((e) => `${e.resource!.resourceType}/${e.resource!.id}`).sort()).toEqual([`ServiceRequest/${sr}`, `Task/${task}`]);
    await move(A, task, { status: 'accepted' });
    await move(A, task, { status: 'in-progress' });
    const signed = (await send(A, 'post', '/fhir/DiagnosticReport', {
      resourceType: 'DiagnosticReport',
      status: 'final',
      basedOn: [{ reference: `ServiceRequest/${sr}` }],
      code: { coding: [ECG] },
      subject: { reference: 'Patient/pc' },
      resultsInterpreter: [{ reference: `Organization/${A}` }],
      conclusion: '窦性心律，ST段未见明显异常',
    }, 201)) as DiagnosticReport;
    // A reading is completed by handing back its report.
    const current = (await agents[A].get(`/fhir/Task/${task}`).expect(200)).body as Task;
    const bare = await agents[A].put(`/fhir/Task/${task}`).set('Content-Type', FHIR).send({ ...current, status: 'completed' });
    expect([bare.status, bare.body.issue?.[0]?.expression]).toEqual([422, ['Task.output']]);
    await move(A, task, { status: 'completed', output: [{ type: { text: 'signed report' }, valueReference: { reference: `DiagnosticReport/${signed.id}` } }] });
    // The centre is told of the signed report (its own draft, preliminary, was not a match).
    const told = await hooks.next((h) => h.path.startsWith('/centre-reports/'), 'the signed report at the centre');
    expect([told.path, (told.resource as DiagnosticReport).conclusion]).toEqual([`/centre-reports/DiagnosticReport/${signed.id}`, '窦性心律，ST段未见明显异常']);

    const back = (await agents[C].get(`/fhir/DiagnosticReport?based-on=ServiceRequest/${sr}`).expect(200)).body as Bundle;
    expect(back.entry?.map((e) => (e.resource as DiagnosticReport).conclusion)).toEqual(['窦性心律，ST段未见明显异常']);
    const done = (await agents[C].get(`/fhir/Task/${task}`).expect(200)).body as Task;
    expect(done.output?.[0].valueReference?.reference).toBe(`DiagnosticReport/${signed.id}`);

    // An up-referral the hospital accepted, then the office's figures for this month.
    const [, referral] = await submit(workflowBundle('up', []));
    await move(A, referral, { status: 'accepted' });
    const month = monthPeriod(undefined).start;
    await agents[C].get('/workflows/metrics').expect(403);
    const figures = (await agents[OFFICE].get('/workflows/metrics').expect(200)).body as WorkflowFigures;
    expect(figures.period.start).toBe(month);
    const hospital = figures.facilities.find((f) => f.facility === A)!;
    const centre = figures.facilities.find((f) => f.facility === C)!;
    expect([hospital.readings, hospital.received, hospital.accepted, hospital.acceptanceRate, hospital.completed]).toEqual([1, { up: 1, down: 0 }, 1, 1, 0]);
    expect(hospital.medianMinutesToAccept).toBeGreaterThanOrEqual(0);
    expect(centre.sent).toEqual({ up: 1, down: 0 });
    expect(figures.readingTurnaround).toEqual([{ priority: 'stat', completed: 1, medianMinutes: expect.any(Number), p90Minutes: expect.any(Number) }]);

    const report = (await agents[OFFICE].get('/fhir/MeasureReport/$referral-flows').expect(200)).body as MeasureReport;
    const group = report.group!.find((g) => g.code?.text === `Organization/${A}`)!;
    expect(group.population!.find((p) => p.code!.coding![0].code === 'received-up')!.count).toBe(1);
    expect(group.measureScore!.value).toBe(1);
    expect(report.group!.find((g) => g.code?.coding?.[0].code === 'reading-turnaround')!.code!.text).toBe('stat');

    const bad = await agents[OFFICE].get('/workflows/metrics?month=2026-13').expect(400);
    expect(bad.body.issue[0].diagnostics).toContain('YYYY-MM');
  });
});
