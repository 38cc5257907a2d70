/**
 * The access rules of issue 5, tried on every path where data leaves the gateway, with real
 * tokens against the real app over PostgreSQL and the patient index. Three facilities and the
 * office; all persons synthetic:
 * - X is registered at the city hospital (A) and the county hospital (B), linked as one
 *   person, and opted out of sharing through a Consent recorded at A;
 * - Y is registered at A and shared, but one of her results is labelled HIV (sensitive);
 * - the community centre (C) authored none of it.
 * Every attempt is counted, and the count printed, so CI shows how much was tried.
 */
import request from 'supertest';
import type { AuditEvent, Bundle, Consent, Observation, OperationOutcome, Parameters, Resource } from '@medplum/fhirtypes';
import { createApp } from '../../gateway/app';
import { auditTrail } from '../../gateway/audit/trail';
import { agentFor, OFFICE, testAuth } from '../support/auth';
import { labObservation } from '../support/fixtures';
import { openIndexedStore } from '../support/mpi';
import { facilityPatient, idNumber, mrnSystem, optOutConsent } from '../support/people';
import type { TestStore } from '../support/stores';

const FHIR = 'application/fhir+json';
const A = 'city-hospital';
const B = 'county-hospital';
const C = 'community-centre-a';
const ID_CARD = 'urn:oid:2.16.156.10011.1.3';
const X_ID = idNumber('1958-09-14', 17);
const MRN_SYSTEMS = Object.fromEntries([A, B, C].map((f) => [mrnSystem(f), f]));
const HIV = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIV' };

let attempts = 0;

describe('access rules on every read path (PostgreSQL, tokens, patient index)', () => {
  let store: TestStore;
  let app: ReturnType<typeof createApp>;
  const agents: Record<string, request.Agent> = {};
  /** What the audit trail recorded, in order. */
  const audited: AuditEvent[] = [];
  /** Y's golden Patient: shared like her registration, so part of what C sees of her. */
  let yGolden: string;
  /** The ids in a searchset's entries (matches and includes alike). */
  const idsOf = (b: Bundle): string[] => (b.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => `${e.resource!.resourceType}/${e.resource!.id}`).sort();
  const get = (who: string, path: string, headers: Record<string, string> = {}) => {
    attempts++;
    let req = agents[who].get(path);
    for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
    return req;
  };
  const put = async (who: string, r: Resource & { id: string }) => {
    const res = await agents[who].put(`/fhir/${r.resourceType}/${r.id}`).set('Content-Type', FHIR).send(r);
    expect([res.status, res.body.issue]).toEqual([expect.any(Number), undefined]);
    return res;
  };

  beforeAll(async () => {
    const indexed = await openIndexedStore('postgres', { access: { mrnSystems: MRN_SYSTEMS } });
    store = indexed;
    const audit = auditTrail({ record: (e) => audited.push(e) }, { observer: { name: 'security-suite', url: 'http://gateway.test/fhir' } });
    app = createApp({ repo: indexed.repo, mpi: indexed.mpi, auth: await testAuth(), audit });
    for (const f of [A, B, C, OFFICE]) agents[f] = await agentFor(app, f);
    await put(A, facilityPatient('xa', { name: '赵建国', gender: 'male', birthDate: '1958-09-14', idNumber: X_ID }, A));
    await put(B, facilityPatient('xb', { name: '赵建国', gender: 'male', birthDate: '1958-09-14', idNumber: X_ID }, B));
    await put(A, labObservation('xa-obs', 'xa', '2345-7', 6.1, 'mmol/L', '2026-05-01'));
    await put(A, { resourceType: 'DiagnosticReport', id: 'xa-dr', status: 'final', code: { text: '血糖' }, subject: { reference: 'Patient/xa' }, result: [{ reference: 'Observation/xa-obs' }] });
    await put(B, labObservation('xb-obs', 'xb', '718-7', 131, 'g/L', '2026-05-02'));
    await put(A, optOutConsent('xa-optout', 'xa'));
    await put(A, facilityPatient('ya', { name: '钱秀英', gender: 'female', birthDate: '1971-02-03' }, A));
    await put(A, labObservation('ya-obs', 'ya', '2345-7', 5.0, 'mmol/L', '2026-05-03'));
    await put(A, labObservation('ya-hiv', 'ya', '7917-8', 0, '{index}', '2026-05-03', { meta: { security: [HIV] } } as Partial<Observation>));
    const links = (await agents[OFFICE].get('/fhir/Patient/ya/$mpi-links').expect(200)).body as Parameters;
    yGolden = links.parameter!.find((p) => p.name === 'golden')!.valueReference!.reference!;
  });
  afterAll(async () => {
    console.log(`security: ${attempts} attempts on the read paths (reads, searches, includes, history, $everything, PIXm, $match, bundles)`);
    await store.close();
  });

  it('the patient index sees X as one person, so the opt-out reaches both registrations', async () => {
    const links = await get(OFFICE, '/fhir/Patient/xb/$mpi-links').expect(200);
    const members = ((links.body as Parameters).parameter ?? []).filter((p) => p.name === 'link').length;
    expect(members).toBe(2);
  });

  it('read and vread: the opted-out person is absent for the centre, and for B beyond its own records', async () => {
    for (const path of ['Patient/xa', 'Patient/xb', 'Observation/xa-obs', 'Observation/xb-obs', 'DiagnosticReport/xa-dr', 'Observation/xa-obs/_history/1', 'Consent/xa-optout']) {
      const res = await get(C, `/fhir/${path}`);
      expect([path, res.status, (res.body as OperationOutcome).issue?.[0].code]).toEqual([path, 404, 'not-found']);
    }
    await get(B, '/fhir/Patient/xb').expect(200);
    await get(B, '/fhir/Observation/xb-obs').expect(200);
    await get(B, '/fhir/Observation/xa-obs').expect(404);
    await get(A, '/fhir/Observation/xa-obs').expect(200);
    await get(A, '/fhir/Observation/xb-obs').expect(404);
    await get(OFFICE, '/fhir/Observation/xb-obs').expect(200);
  });

  it('search, counts and chained search leave the person out for C, and keep each facility to its own', async () => {
    const c = await get(C, '/fhir/Observation?code=http://loinc.org|2345-7&_total=accurate').expect(200);
    expect(idsOf(c.body)).toEqual(['Observation/ya-obs']);
    expect(c.body.total).toBe(1);
    const count = await get(C, '/fhir/Observation?_summary=count').expect(200);
    expect(count.body.total).toBe(1);
    const chained = await get(C, `/fhir/Observation?subject:Patient.identifier=${ID_CARD}|${X_ID}`).expect(200);
    expect(idsOf(chained.body)).toEqual([]);
    const patients = await get(C, `/fhir/Patient?identifier=${ID_CARD}|${X_ID}`).expect(200);
    expect(idsOf(patients.body)).toEqual([]);
    const own = await get(B, `/fhir/Observation?subject:mdm=Patient/xb`).expect(200);
    expect(idsOf(own.body)).toEqual(['Observation/xb-obs']);
    const office = await get(OFFICE, `/fhir/Observation?subject:mdm=Patient/xb`).expect(200);
    expect(idsOf(office.body)).toEqual(['Observation/xa-obs', 'Observation/xb-obs']);
  });

  it('_include and _revinclude bring in nothing the reader may not see', async () => {
    const inc = await get(C, '/fhir/DiagnosticReport?_include=DiagnosticReport:result&_include=DiagnosticReport:subject').expect(200);
    expect(idsOf(inc.body)).toEqual([]);
    const rev = await get(C, '/fhir/Patient?_revinclude=Observation:subject&_revinclude=Consent:patient').expect(200);
    expect(idsOf(rev.body)).toEqual(['Observation/ya-obs', yGolden, 'Patient/ya'].sort());
    const byA = await get(A, '/fhir/Patient?_id=xa&_revinclude=Observation:subject&_revinclude=DiagnosticReport:subject').expect(200);
    expect(idsOf(byA.body)).toEqual(['DiagnosticReport/xa-dr', 'Observation/xa-obs', 'Patient/xa']);
  });

  it('history, of an instance or a type, shows no version the reader may not see', async () => {
    await get(C, '/fhir/Observation/xa-obs/_history').expect(404);
    const type = await get(C, '/fhir/Observation/_history').expect(200);
    expect(idsOf(type.body)).toEqual(['Observation/ya-obs']);
  });

  it('$everything: absent for C, each facility its own part of X', async () => {
    await get(C, '/fhir/Patient/xa/$everything').expect(404);
    await get(C, '/fhir/Patient/xb/$everything').expect(404);
    const b = await get(B, '/fhir/Patient/xb/$everything').expect(200);
    expect(idsOf(b.body)).toEqual(['Observation/xb-obs', 'Patient/xb']);
    const y = await get(C, '/fhir/Patient/ya/$everything').expect(200);
    expect(idsOf(y.body)).toEqual(['Observation/ya-obs', yGolden, 'Patient/ya'].sort());
  });

  it('PIXm and $match give C no trace of the person', async () => {
    await get(C, `/fhir/Patient/$ihe-pix?sourceIdentifier=${ID_CARD}|${X_ID}`).expect(404);
    const pixB = await get(B, `/fhir/Patient/$ihe-pix?sourceIdentifier=${ID_CARD}|${X_ID}`).expect(200);
    const targets = ((pixB.body as Parameters).parameter ?? []).filter((p) => p.name === 'targetId').map((p) => p.valueReference!.reference);
    expect(targets).toEqual(['Patient/xb']);
    attempts++;
    const match = await agents[C]
      .post('/fhir/Patient/$match')
      .set('Content-Type', FHIR)
      .send({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource: facilityPatient('probe', { name: '赵建国', gender: 'male', birthDate: '1958-09-14', idNumber: X_ID }, C) }] })
      .expect(200);
    expect(idsOf(match.body)).toEqual([]);
  });

  it('a batch reads through the same rules as a single read', async () => {
    attempts++;
    const res = await agents[C]
      .post('/fhir')
      .set('Content-Type', FHIR)
      .send({ resourceType: 'Bundle', type: 'batch', entry: ['Patient/xa', 'Observation/ya-obs', 'Observation?patient=xa'].map((url) => ({ request: { method: 'GET', url } })) })
      .expect(200);
    const statuses = (res.body as Bundle).entry!.map((e) => e.response!.status.slice(0, 3));
    expect(statuses).toEqual(['404', '200', '200']);
    const found = (res.body as Bundle).entry![2].resource as Bundle;
    expect(found.entry ?? []).toEqual([]);
  });

  it('refused and empty-handed attempts are audited too, as failures or as what was asked', async () => {
    audited.length = 0;
    await get(C, '/fhir/Observation/xa-obs').expect(404);
    attempts++;
    await request(app).get('/fhir/Observation/xa-obs').expect(401);
    await new Promise((r) => setTimeout(r, 20));
    expect(audited.map((e) => [e.subtype![0].code, e.outcome])).toEqual([
      ['read', '4'],
      ['read', '4'],
    ]);
  });

  it('a sensitive result is for its author only', async () => {
    await get(C, '/fhir/Observation/ya-hiv').expect(404);
    const c = await get(C, '/fhir/Observation?patient=ya').expect(200);
    expect(idsOf(c.body)).toEqual(['Observation/ya-obs']);
    const a = await get(A, '/fhir/Observation?patient=ya').expect(200);
    expect(idsOf(a.body)).toEqual(['Observation/ya-hiv', 'Observation/ya-obs']);
  });

  it('break-the-glass lets a clinician through opt-out and sensitivity, for reading only', async () => {
    const glass = { 'X-Break-Glass': encodeURIComponent('急诊抢救，患者昏迷') };
    await get(C, '/fhir/Observation/xa-obs', glass).expect(200);
    await get(C, '/fhir/Observation/ya-hiv', glass).expect(200);
    const everything = await get(C, '/fhir/Patient/xa/$everything', glass).expect(200);
    expect(idsOf(everything.body)).toEqual(expect.arrayContaining(['Observation/xa-obs', 'DiagnosticReport/xa-dr', 'Observation/xb-obs', 'Patient/xb']));
    await new Promise((r) => setTimeout(r, 20));
    const btg = audited.filter((e) => e.agent.some((a) => a.purposeOfUse?.some((p) => p.coding?.[0].code === 'BTG')));
    expect(btg.length).toBeGreaterThanOrEqual(3);
    const read = btg.find((e) => e.entity?.some((x) => x.what?.reference === 'Observation/xa-obs'))!;
    expect(read.entity!.filter((x) => x.role?.code === '1').map((x) => x.what!.reference)).toEqual(['Patient/xa']);
    expect(read.agent.flatMap((a) => a.purposeOfUse ?? []).map((p) => p.text)).toContain('急诊抢救，患者昏迷');
    attempts++;
    const write = await agents[C].put('/fhir/Observation/xa-obs').set(glass).set('Content-Type', FHIR).send(labObservation('xa-obs', 'xa', '2345-7', 9.9, 'mmol/L', '2026-05-01'));
    expect([write.status, write.body.issue[0].code]).toEqual([403, 'forbidden']);
  });

  it('withdrawing the consent restores sharing', async () => {
    const consent = (await get(A, '/fhir/Consent/xa-optout').expect(200)).body as Consent & { id: string };
    await put(A, { ...consent, status: 'inactive' });
    await get(C, '/fhir/Observation/xa-obs').expect(200);
    await get(C, '/fhir/Observation/xb-obs').expect(200);
    await put(A, { ...consent, status: 'active' });
    await get(C, '/fhir/Observation/xa-obs').expect(404);
  });
});

describe('facility write rules through the FHIR API (PostgreSQL)', () => {
  let store: TestStore;
  let app: ReturnType<typeof createApp>;
  const agents: Record<string, request.Agent> = {};
  const send = (who: string, method: 'put' | 'post' | 'delete', path: string, body?: unknown) => {
    attempts++;
    const req = agents[who][method](path).set('Content-Type', FHIR);
    return body === undefined ? req : req.send(body as object);
  };

  beforeAll(async () => {
    const indexed = await openIndexedStore('postgres', { access: { mrnSystems: MRN_SYSTEMS } });
    store = indexed;
    app = createApp({ repo: indexed.repo, mpi: indexed.mpi, auth: await testAuth() });
    for (const f of [A, C]) agents[f] = await agentFor(app, f);
    await send(A, 'put', '/fhir/Patient/wa', facilityPatient('wa', { name: '孙伟', gender: 'male', birthDate: '1980-01-01' }, A)).expect(201);
    await send(A, 'put', '/fhir/Observation/wa-obs', labObservation('wa-obs', 'wa', '2345-7', 5.5, 'mmol/L', '2026-01-01')).expect(201);
  });
  afterAll(async () => {
    console.log(`security: ${attempts} attempts in all, write rules included`);
    await store.close();
  });

  it('stamps the writer as author, whatever author tag the client sent', async () => {
    const forged = labObservation('c-obs', 'wa', '2345-7', 5.9, 'mmol/L', '2026-02-01', { meta: { tag: [{ system: 'http://consortium.example/fhir/CodeSystem/author-facility', code: A }] } } as Partial<Observation>);
    const res = await send(C, 'put', '/fhir/Observation/c-obs', forged).expect(201);
    const tags = (res.body as Observation).meta!.tag!.filter((t) => t.system === 'http://consortium.example/fhir/CodeSystem/author-facility');
    expect(tags).toEqual([expect.objectContaining({ code: C })]);
  });

  it('refuses another facility update, delete, or a Patient under its MRN system', async () => {
    const update = await send(C, 'put', '/fhir/Observation/wa-obs', labObservation('wa-obs', 'wa', '2345-7', 1.1, 'mmol/L', '2026-01-01'));
    expect([update.status, update.body.issue[0].code]).toEqual([403, 'forbidden']);
    const del = await send(C, 'delete', '/fhir/Observation/wa-obs');
    expect(del.status).toBe(403);
    const impostor = await send(C, 'post', '/fhir/Patient', facilityPatient('ignored', { name: '孙伟', gender: 'male', birthDate: '1980-01-01' }, A));
    expect([impostor.status, impostor.body.issue[0].expression]).toEqual([403, ['Patient.identifier[0]']]);
    const stored = await agents[A].get('/fhir/Observation/wa-obs').expect(200);
    expect((stored.body as Observation).valueQuantity!.value).toBe(5.5);
  });

  it('a transaction with one cross-facility entry writes nothing', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:6d1d7c2e-0000-4000-8000-000000000001', resource: labObservation('c-new', 'wa', '2345-7', 6.6, 'mmol/L', '2026-03-01'), request: { method: 'PUT', url: 'Observation/c-new' } },
        { resource: labObservation('wa-obs', 'wa', '2345-7', 0.1, 'mmol/L', '2026-01-01'), request: { method: 'PUT', url: 'Observation/wa-obs' } },
      ],
    };
    const res = await send(C, 'post', '/fhir', bundle);
    expect(res.status).toBe(403);
    await agents[A].get('/fhir/Observation/c-new').expect(404);
  });
});
