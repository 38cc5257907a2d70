/**
 * Result recognition against the real app over PostgreSQL and the patient index, with real
 * tokens. X is registered at the city hospital (A) and the county hospital (B), linked as one
 * person; Y is another patient; Z opted out at A, and her result at B is B's. All synthetic.
 */
import request from 'supertest';
import type { AuditEvent, Bundle, Parameters, ServiceRequest } from '@medplum/fhirtypes';
import { auditTrail } from '../../gateway/audit/trail';
import { createApp } from '../../gateway/app';
import { parseRules } from '../../workflows/recognition/match';
import { agentFor, testAuth } from '../support/auth';
import { labObservation } from '../support/fixtures';
import { openIndexedStore } from '../support/mpi';
import { facilityPatient, idNumber, mrnSystem, optOutConsent } from '../support/people';
import type { TestStore } from '../support/stores';

const FHIR = 'application/fhir+json';
const A = 'city-hospital';
const B = 'county-hospital';
const days = (n: number): string => new Date(Date.now() - n * 86_400_000).toISOString();

const order = (id: string, patient: string, code: string): ServiceRequest => ({
  resourceType: 'ServiceRequest', id, status: 'draft', intent: 'order', subject: { reference: `Patient/${patient}` }, code: { coding: [{ system: 'http://loinc.org', code }] },
});
const hookCall = (patientId: string | undefined, orders: ServiceRequest[]) => ({
  hook: 'order-sign', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
  context: { userId: 'Practitioner/dr-a', patientId, draftOrders: { resourceType: 'Bundle', type: 'collection', entry: orders.map((resource) => ({ resource })) } as Bundle },
});

describe('result recognition (PostgreSQL, tokens, patient index)', () => {
  let store: TestStore;
  let app: ReturnType<typeof createApp>;
  let a: request.Agent;
  let b: request.Agent;
  const audited: AuditEvent[] = [];
  const put = async (agent: request.Agent, r: { resourceType: string; id?: string }) => {
    const res = await agent.put(`/fhir/${r.resourceType}/${r.id}`).set('Content-Type', FHIR).send(r);
    expect([res.status, res.body.issue]).toEqual([expect.any(Number), undefined]);
  };
  const sign = (patient: string | undefined, orders: ServiceRequest[]) => a.post('/cds-services/result-recognition-order-sign').send(hookCall(patient, orders));

  beforeAll(async () => {
    store = await openIndexedStore('postgres', { access: { mrnSystems: { [mrnSystem(A)]: A, [mrnSystem(B)]: B } } });
    app = createApp({ repo: store.repo, mpi: (store as TestStore & { mpi: never }).mpi, auth: await testAuth(), audit: auditTrail({ record: (e) => audited.push(e) }, { observer: { name: 'recognition-suite', url: 'http://gateway.test/fhir' } }) });
    a = await agentFor(app, A);
    b = await agentFor(app, B);
    const X = idNumber('1962-04-02', 21);
    await put(a, facilityPatient('xa', { name: '孙立新', gender: 'male', birthDate: '1962-04-02', idNumber: X }, A));
    await put(b, facilityPatient('xb', { name: '孙立新', gender: 'male', birthDate: '1962-04-02', idNumber: X }, B));
    await put(b, { resourceType: 'Organization', id: B, name: '县人民医院' } as never);
    await put(b, labObservation('xb-glu', 'xb', '2345-7', 6.4, 'mmol/L', days(3)));
    await put(b, labObservation('xb-hb-old', 'xb', '718-7', 130, 'g/L', days(20)));
    await put(b, labObservation('xb-a1c', 'xb', '17856-6', 7.1, '%', days(30)));
    await put(a, facilityPatient('ya', { name: '周玉兰', gender: 'female', birthDate: '1980-01-09' }, A));
    await put(b, facilityPatient('zb', { name: '吴海燕', gender: 'female', birthDate: '1975-07-07', idNumber: idNumber('1975-07-07', 22) }, B));
    await put(b, optOutConsent('zb-optout', 'zb'));
    await put(b, labObservation('zb-glu', 'zb', '2345-7', 5.5, 'mmol/L', days(2)));
  });
  afterAll(() => store.close());

  it('discovery lists the order-select and order-sign services', async () => {
    const res = await a.get('/cds-services').expect(200);
    expect(res.body.services.map((s: { hook: string }) => s.hook).sort()).toEqual(['order-select', 'order-sign']);
  });

  it('a duplicate test held by another facility gives a card naming value, facility and date, with a delete suggestion', async () => {
    const res = await sign('xa', [order('draft-glu', 'xa', '2345-7')]).expect(200);
    expect(res.body.cards).toHaveLength(1);
    const card = res.body.cards[0];
    expect(card.summary).toContain('6.4 mmol/L');
    expect(card.summary).toContain('县人民医院');
    expect(card.summary).toContain(days(3).slice(0, 10));
    expect(card.indicator).toBe('info');
    expect(card.suggestions[0].actions[0]).toMatchObject({ type: 'delete', resourceId: ['ServiceRequest/draft-glu'] });
  });

  it('a result outside its window (blood count, 7 days) gives no card', async () => {
    expect((await sign('xa', [order('draft-hb', 'xa', '718-7')]).expect(200)).body.cards).toEqual([]);
  });

  it('the windows come from the configured rules: a 30-day blood count window recognises the 20-day-old result', async () => {
    const rules = parseRules({ windows: [{ name: 'Blood count', codes: ['718-7'], days: 30 }] });
    const configured = createApp({ repo: store.repo, mpi: (store as TestStore & { mpi: never }).mpi, auth: await testAuth(), recognitionRules: rules });
    const res = await (await agentFor(configured, A)).post('/cds-services/result-recognition-order-sign').send(hookCall('xa', [order('draft-hb', 'xa', '718-7')])).expect(200);
    expect(res.body.cards.map((c: { summary: string }) => c.summary)).toEqual([expect.stringContaining('130 g/L')]);
    expect(() => parseRules({ windows: [{ name: 'x', codes: ['718-7'], days: 0 }] })).toThrow(/windows\[0\]/);
  });

  it('a mapped equivalent code (HbA1c 4548-4 ordered, 17856-6 held) gives a card', async () => {
    const cards = (await sign('xa', [order('draft-a1c', 'xa', '4548-4')]).expect(200)).body.cards;
    expect(cards).toHaveLength(1);
    expect(cards[0].summary).toContain('HbA1c');
  });

  it("another patient's results give no card", async () => {
    expect((await sign('ya', [order('draft-y', 'ya', '2345-7')]).expect(200)).body.cards).toEqual([]);
  });

  it("an opted-out patient's result from another facility gives no card, but its own facility sees it", async () => {
    expect((await sign('zb', [order('draft-z', 'zb', '2345-7')]).expect(200)).body.cards).toEqual([]);
    const own = await b.post('/cds-services/result-recognition-order-sign').send(hookCall('zb', [order('draft-z', 'zb', '2345-7')])).expect(200);
    expect(own.body.cards).toHaveLength(1);
  });

  it('the FHIR operation answers with the matching results', async () => {
    const body: Parameters = { resourceType: 'Parameters', parameter: [{ name: 'order', resource: order('draft-glu', 'xa', '2345-7') }] };
    const res = await a.post('/fhir/ServiceRequest/$recognition').set('Content-Type', FHIR).send(body).expect(200);
    const match = (res.body as Parameters).parameter!;
    expect(match).toHaveLength(1);
    expect(match[0].part!.find((p) => p.name === 'result')!.resource!.id).toBe('xb-glu');
    const meta = await a.get('/fhir/metadata').expect(200);
    const sr = meta.body.rest[0].resource.find((r: { type: string }) => r.type === 'ServiceRequest');
    expect(sr.operation.map((o: { name: string }) => o.name)).toContain('recognition');
  });

  it('bad input gets a 400 OperationOutcome naming the field', async () => {
    const noPatient = await sign(undefined, [order('d', 'xa', '2345-7')]).expect(400);
    expect(noPatient.body.resourceType).toBe('OperationOutcome');
    expect(noPatient.body.issue[0].diagnostics).toContain('patientId');
    const notBundle = await a.post('/cds-services/result-recognition-order-sign').send({ hook: 'order-sign', context: { patientId: 'xa', draftOrders: [] } }).expect(400);
    expect(notBundle.body.issue[0].diagnostics).toContain('draftOrders');
  });

  it('a CDS Hooks call is audited with the patient whose results it read', async () => {
    audited.length = 0;
    await sign('xa', [order('draft-glu', 'xa', '2345-7')]).expect(200);
    await new Promise((r) => setImmediate(r));
    const refs = audited.flatMap((e) => (e.entity ?? []).map((x) => x.what?.reference));
    expect(refs).toEqual(expect.arrayContaining(['Patient/xa', 'Patient/xb']));
  });

  it('without a token the service answers 401', async () => {
    await request(app).post('/cds-services/result-recognition-order-sign').send(hookCall('xa', [])).expect(401);
  });
});
