/**
 * Two-way referral end to end over the FHIR API, with real tokens, PostgreSQL and the patient
 * index. Three facilities, all persons synthetic: the community centre (C) refers X up to the
 * city hospital (A); the hospital treats and refers her back down with a discharge summary;
 * the county hospital (B) is on neither referral. X opted out of general sharing at the centre,
 * so the hospital reads the centre's records only while a referral between them is open.
 * Each end is notified over a rest-hook Subscription: the hospital of the referral it receives,
 * the centre of the down-referral with the discharge summary and of its own referral's close.
 */
import request from 'supertest';
import type { AuditEvent, Bundle, Observation, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { createApp } from '../../gateway/app';
import { auditTrail } from '../../gateway/audit/trail';
import { DIRECTION, SNOMED_REFERRAL, TASK_CODE, WORKFLOW_CATEGORY, type Direction } from '../../profiles/referral';
import { writeAuditEvents } from '../../workers/audit';
import { attachWorkflows } from '../../workflows/attach';
import { agentFor, OFFICE, testAuth } from '../support/auth';
import { labObservation } from '../support/fixtures';
import { restHook, startHookReceiver, subscribe, testNotifications, type HookReceiver } from '../support/notify';
import { openIndexedStore } from '../support/mpi';
import { facilityPatient, idNumber, mrnSystem, optOutConsent } from '../support/people';
import type { TestStore } from '../support/stores';

const FHIR = 'application/fhir+json';
const A = 'city-hospital';
const B = 'county-hospital';
const C = 'community-centre-a';
const MRN_SYSTEMS = Object.fromEntries([A, B, C].map((f) => [mrnSystem(f), f]));

/** A referral as one transaction Bundle: the ServiceRequest and its Task, linked by urn:uuid. */
function referral(direction: Direction, from: string, to: string, patient: string, supportingInfo: string[] = []): Bundle {
  const sr: ServiceRequest = {
    resourceType: 'ServiceRequest',
    meta: { source: `urn:facility:${from}` },
    status: 'active',
    intent: 'order',
    category: [{ coding: [SNOMED_REFERRAL] }, { coding: [WORKFLOW_CATEGORY.referral, DIRECTION[direction]] }],
    code: { coding: [SNOMED_REFERRAL] },
    priority: 'urgent',
    subject: { reference: `Patient/${patient}` },
    authoredOn: '2026-11-30T09:00:00+08:00',
    requester: { reference: `Organization/${from}` },
    performer: [{ reference: `Organization/${to}` }],
    reasonCode: [{ text: direction === 'up' ? '血糖控制不佳，需住院调整方案' : '出院后社区随访' }],
    supportingInfo: supportingInfo.map((reference) => ({ reference })),
  };
  const task: Task = {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    code: { coding: [TASK_CODE] },
    priority: 'urgent',
    focus: { reference: 'urn:uuid:5d1c7a52-0000-4000-8000-000000000001' },
    basedOn: [{ reference: 'urn:uuid:5d1c7a52-0000-4000-8000-000000000001' }],
    for: { reference: `Patient/${patient}` },
    requester: { reference: `Organization/${from}` },
    owner: { reference: `Organization/${to}` },
    authoredOn: '2026-11-30T09:00:00+08:00',
  };
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:5d1c7a52-0000-4000-8000-000000000001', resource: sr, request: { method: 'POST', url: 'ServiceRequest' } },
      { fullUrl: 'urn:uuid:5d1c7a52-0000-4000-8000-000000000002', resource: task, request: { method: 'POST', url: 'Task' } },
    ],
  };
}

describe('two-way referral across three facilities (PostgreSQL, tokens, patient index)', () => {
  let store: TestStore;
  let hooks: HookReceiver;
  let notifications: ReturnType<typeof testNotifications>;
  const agents: Record<string, request.Agent> = {};
  const audited: AuditEvent[] = [];

  const put = async (who: string, r: Resource & { id: string }) => {
    const res = await agents[who].put(`/fhir/${r.resourceType}/${r.id}`).set('Content-Type', FHIR).send(r);
    expect([res.status, res.body.issue]).toEqual([expect.any(Number), undefined]);
  };
  /** Moves a Task as `who` (from its current version, which a third facility cannot read itself): the status answer, or the refusal's status and element. */
  const move = async (who: string, id: string, change: Partial<Task>) => {
    const current = (await agents[OFFICE].get(`/fhir/Task/${id}`).expect(200)).body as Task;
    const res = await agents[who].put(`/fhir/Task/${id}`).set('Content-Type', FHIR).set('If-Match', `W/"${current.meta!.versionId}"`).send({ ...current, ...change });
    return res.status < 300 ? res.status : `${res.status} ${res.body.issue?.[0]?.expression?.join(',')}`;
  };
  const refer = async (who: string, bundle: Bundle): Promise<{ sr: string; task: string }> => {
    const res = await agents[who].post('/fhir').set('Content-Type', FHIR).send(bundle);
    expect([res.status, res.body.entry?.map((e: { response: { status: string } }) => e.response.status)]).toEqual([200, ['201 Created', '201 Created']]);
    const [sr, task] = (res.body as Bundle).entry!.map((e) => e.response!.location!.split('/')[1]);
    return { sr, task };
  };

  beforeAll(async () => {
    const indexed = await openIndexedStore('postgres', { access: { mrnSystems: MRN_SYSTEMS } });
    attachWorkflows(indexed.repo);
    store = indexed;
    const audit = auditTrail({ record: (e) => audited.push(e) }, { observer: { name: 'referral-suite', url: 'http://gateway.test/fhir' } });
    const app = createApp({ repo: indexed.repo, mpi: indexed.mpi, auth: await testAuth(), audit });
    for (const f of [A, B, C, OFFICE]) agents[f] = await agentFor(app, f);
    const x = { name: '孙桂兰', gender: 'female' as const, birthDate: '1949-03-08', idNumber: idNumber('1949-03-08', 31) };
    await put(C, facilityPatient('xc', x, C));
    await put(A, facilityPatient('xa', x, A));
    await put(C, labObservation('xc-glu', 'xc', '2345-7', 13.2, 'mmol/L', '2026-11-29'));
    await put(C, labObservation('xc-bp', 'xc', '8480-6', 152, 'mm[Hg]', '2026-11-29'));
    await put(C, optOutConsent('xc-optout', 'xc'));
    hooks = await startHookReceiver();
    notifications = testNotifications(indexed, { mpi: indexed.mpi });
  });
  afterAll(async () => {
    await notifications.stop();
    await hooks.close();
    await store.close();
  });

  it('up, then down: the Task moves only as its two ends may, and the hospital sees the centre\'s record only while a referral is open', async () => {
    // Before any referral the opt-out hides the centre's result from the hospital.
    await agents[A].get('/fhir/Observation/xc-glu').expect(404);
    await subscribe(agents[A], `Task?owner=Organization/${A}&status=requested`, restHook(hooks, '/hospital'));
    await subscribe(agents[C], `Task?owner=Organization/${C}&status=requested`, restHook(hooks, '/centre-inbox'));
    await subscribe(agents[C], `Task?requester=Organization/${C}&status=completed`, restHook(hooks, '/centre-closed'));
    // Results for the whole person, under whichever facility's registration they are written.
    await subscribe(agents[C], 'Observation?subject:mdm=Patient/xc', restHook(hooks, '/centre-results'));

    const up = await refer(C, referral('up', C, A, 'xc', ['Observation/xc-glu']));
    // The hospital is told of the referral it received, with the Task that names what to read.
    const told = await hooks.next((h) => h.path === `/hospital/Task/${up.task}`, 'the up-referral at the hospital');
    expect((told.resource as Task).focus?.reference).toBe(`ServiceRequest/${up.sr}`);
    // Open: the hospital reads the Task, its ServiceRequest and what it carries; the county hospital does not.
    await agents[A].get(`/fhir/Task/${up.task}`).expect(200);
    await agents[A].get(`/fhir/ServiceRequest/${up.sr}`).expect(200);
    await agents[A].get('/fhir/Observation/xc-glu').expect(200);
    const owned = await agents[A].get('/fhir/Task?owner=Organization/city-hospital&status=requested').expect(200);
    expect((owned.body as Bundle).entry?.map((e) => e.resource!.id)).toEqual([up.task]);
    await agents[B].get('/fhir/Observation/xc-glu').expect(404);
    await agents[B].get(`/fhir/Task/${up.task}`).expect(404);

    // Only the owner accepts; the requester cannot, the third facility cannot even see it.
    expect(await move(C, up.task, { status: 'accepted' })).toBe('403 Task.status');
    expect(await move(A, up.task, { status: 'completed' })).toBe('409 Task.status');
    expect(await move(A, up.task, { status: 'accepted' })).toBe(200);
    expect(await move(A, up.task, { status: 'in-progress' })).toBe(200);
    // A result the hospital takes for its own registration reaches the referring centre while the referral is open.
    await put(A, labObservation('xa-a1c', 'xa', '4548-4', 8.9, '%', '2026-11-30'));
    const result = await hooks.next((h) => h.path === '/centre-results/Observation/xa-a1c', 'the hospital\'s result at the centre');
    expect((result.resource as Observation).subject?.reference).toBe('Patient/xa');
    expect(await move(C, up.task, { status: 'cancelled' })).toBe('409 Task.status');
    expect(await move(A, up.task, { status: 'completed', output: [{ type: { text: 'admission' }, valueString: '已收入内分泌科' }] })).toBe(200);
    // The centre hears that its referral closed, and how.
    const closed = await hooks.next((h) => h.path === `/centre-closed/Task/${up.task}`, 'the completed up-referral at the centre');
    expect((closed.resource as Task).output?.[0]?.valueString).toBe('已收入内分泌科');

    // The history keeps each step, and the requester is still the author of every version.
    const history = await agents[C].get(`/fhir/Task/${up.task}/_history`).expect(200);
    const versions = ((history.body as Bundle).entry ?? []).map((e) => e.resource as Task).reverse();
    expect(versions.map((t) => t.status)).toEqual(['requested', 'accepted', 'in-progress', 'completed']);
    expect(new Set(versions.map((t) => t.meta?.tag?.find((g) => g.system?.endsWith('author-facility'))?.code))).toEqual(new Set([C]));

    // Closed: the opt-out holds again, except for what the referral carried, which the hospital keeps.
    await agents[A].get('/fhir/Observation/xc-bp').expect(404);
    await agents[A].get('/fhir/Observation/xc-glu').expect(200);
    await agents[A].get(`/fhir/Task/${up.task}`).expect(200);
    await agents[A].get(`/fhir/ServiceRequest/${up.sr}`).expect(200);
    await agents[B].get('/fhir/Observation/xc-glu').expect(404);

    // Down-referral with the discharge summary; the centre accepts and completes it.
    await put(A, {
      resourceType: 'DocumentReference',
      id: 'xa-discharge',
      status: 'current',
      type: { coding: [{ system: 'http://loinc.org', code: '18842-5', display: 'Discharge summary' }] },
      subject: { reference: 'Patient/xa' },
      content: [{ attachment: { contentType: 'text/plain; charset=utf-8', data: Buffer.from('出院小结：血糖平稳，二甲双胍 0.5g bid').toString('base64') } }],
    });
    const down = await refer(A, referral('down', A, C, 'xa', ['DocumentReference/xa-discharge']));
    // The centre is told of the down-referral; what it carries names the discharge summary, which it can read.
    const inbox = await hooks.next((h) => h.path === `/centre-inbox/Task/${down.task}`, 'the down-referral at the centre');
    expect((inbox.resource as Task).focus?.reference).toBe(`ServiceRequest/${down.sr}`);
    const sr = (await agents[C].get(`/fhir/ServiceRequest/${down.sr}?_include=ServiceRequest:supporting-info`).expect(200)).body as ServiceRequest;
    expect(sr.supportingInfo?.map((s) => s.reference)).toEqual(['DocumentReference/xa-discharge']);
    await agents[C].get('/fhir/DocumentReference/xa-discharge').expect(200);
    // While the down-referral is open the hospital again sees the centre's records of the same person.
    await agents[A].get('/fhir/Observation/xc-glu').expect(200);
    expect(await move(A, down.task, { status: 'accepted' })).toBe('403 Task.status');
    expect(await move(B, down.task, { status: 'accepted' })).toBe('403 Task');
    expect(await move(C, down.task, { status: 'rejected' })).toBe('409 Task.statusReason');
    expect(await move(C, down.task, { status: 'accepted' })).toBe(200);
    expect(await move(C, down.task, { status: 'in-progress' })).toBe(200);
    expect(await move(C, down.task, { status: 'completed' })).toBe(200);
    await agents[A].get('/fhir/Observation/xc-bp').expect(404);
    // The discharge summary stays with the centre after the down-referral closed (上转容易下转难: the records must arrive and stay).
    await agents[C].get('/fhir/DocumentReference/xa-discharge').expect(200);
    await agents[C].get('/fhir/Observation/xa-a1c').expect(404);
  });

  it('a facility cannot file a referral in another facility\'s name, route its Task elsewhere than the ServiceRequest asks, nor change what a referral is about', async () => {
    const forged = await agents[B].post('/fhir').set('Content-Type', FHIR).send(referral('up', C, A, 'xc'));
    expect([forged.status, forged.body.issue?.[0]?.code]).toEqual([403, 'forbidden']);
    // The Task goes to the facility the ServiceRequest asks, for its patient.
    const misrouted = referral('up', C, A, 'xc');
    (misrouted.entry![1].resource as Task).owner = { reference: `Organization/${B}` };
    const wrongOwner = await agents[C].post('/fhir').set('Content-Type', FHIR).send(misrouted);
    expect([wrongOwner.status, wrongOwner.body.issue?.[0]?.expression]).toEqual([422, ['Task.owner']]);
    const mismatched = referral('up', C, A, 'xc');
    (mismatched.entry![1].resource as Task).for = { reference: 'Patient/xa' };
    const wrongPatient = await agents[C].post('/fhir').set('Content-Type', FHIR).send(mismatched);
    expect([wrongPatient.status, wrongPatient.body.issue?.[0]?.expression]).toEqual([422, ['Task.for']]);
    const { task } = await refer(C, referral('up', C, A, 'xc'));
    expect(await move(A, task, { owner: { reference: `Organization/${B}` } })).toBe('409 Task.owner');
    expect(await move(C, task, { for: { reference: 'Patient/xa' } })).toBe('409 Task.for');
    expect(await move(C, task, { status: 'cancelled' })).toBe(200);
  });

  it('the audit names the open referral as the purpose of the hospital\'s reads', async () => {
    const { task } = await refer(C, referral('up', C, A, 'xc', ['Observation/xc-glu']));
    audited.length = 0;
    await agents[A].get('/fhir/Observation/xc-glu').expect(200);
    await agents[B].get('/fhir/Patient/xc').expect(404);
    await writeAuditEvents(store.repo, audited.map((e) => ({ ...e, id: e.id! })));
    const [byA, byB] = await Promise.all(audited.map((e) => store.repo.read('AuditEvent', e.id!).then((s) => s.resource as AuditEvent)));
    const purpose = (e: AuditEvent) => e.agent.find((a) => a.requestor)?.purposeOfUse?.[0];
    expect(purpose(byA)).toEqual({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' }], text: `open referral Task/${task}` });
    expect(purpose(byB)).toBeUndefined();
  });
});
