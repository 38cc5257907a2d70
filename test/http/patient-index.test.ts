import request from 'supertest';
import type { Bundle, CapabilityStatement, Parameters, Patient } from '@medplum/fhirtypes';
import { DRIVERS } from '../support/stores';
import { startTestServer, type TestServer } from '../support/server';
import { agentFor, OFFICE } from '../support/auth';
import { labObservation } from '../support/fixtures';
import { facilityPatient, idNumber, mrnSystem } from '../support/people';
import { indexProblems } from '../support/mpi';

const FHIR = 'application/fhir+json';
const ID_CARD = 'urn:oid:2.16.156.10011.1.3';
const params = (...parameter: Parameters['parameter'] & object) => ({ resourceType: 'Parameters', parameter });
const values = (p: Parameters, name: string) => (p.parameter ?? []).filter((x) => x.name === name);

describe.each(DRIVERS)('patient index over FHIR on %s', (driver) => {
  let t: TestServer;
  let office: request.Agent;
  const api = () => office;
  const id = idNumber('1966-05-20', 31);
  let golden: string;
  beforeAll(async () => {
    t = await startTestServer(driver, { patientIndex: true });
    office = await agentFor(t.app, OFFICE);
    const put = (p: Patient & { id: string }) => api().put(`/fhir/Patient/${p.id}`).set('Content-Type', FHIR).send(p).expect((r) => expect([200, 201]).toContain(r.status));
    await put(facilityPatient('h-1', { name: '刘洋', gender: 'male', birthDate: '1966-05-20', idNumber: id, phone: '13311112222' }, 'city-hospital'));
    await put(facilityPatient('h-2', { name: '劉洋', gender: 'male', birthDate: '1966-05-20', phone: '13311112222' }, 'community-centre-a'));
    await put(facilityPatient('h-3', { name: '刘阳', gender: 'male', birthDate: '1966-05-20' }, 'county-hospital'));
    await put(facilityPatient('h-9', { name: '黄蓉', gender: 'female', birthDate: '1990-02-02' }, 'county-hospital'));
    for (const [obs, patient] of [['h-o1', 'h-1'], ['h-o2', 'h-2'], ['h-o3', 'h-3'], ['h-o9', 'h-9']]) {
      await api().put(`/fhir/Observation/${obs}`).set('Content-Type', FHIR).send(labObservation(obs, patient, '2345-7', 5.4, 'mmol/L', '2026-03-01')).expect(201);
    }
    const links = await api().get('/fhir/Patient/h-1/$mpi-links').expect(200);
    golden = (values(links.body, 'golden')[0].valueReference!.reference as string).slice(8);
  });
  afterAll(async () => {
    expect(await indexProblems(t.store.repo.executor)).toEqual([]);
    await t.close();
  });

  it('lists the index operations and the link expansion in the CapabilityStatement', async () => {
    const cs = (await api().get('/fhir/metadata').expect(200)).body as CapabilityStatement;
    const patient = cs.rest![0].resource!.find((r) => r.type === 'Patient')!;
    expect(patient.operation!.map((o) => o.name)).toEqual(expect.arrayContaining(['everything', 'ihe-pix', 'match', 'mpi-merge', 'mpi-unmerge']));
    expect(patient.documentation).toMatch(/golden Patient id in any Patient reference search parameter/);
  });

  it('describes each link: registration, automatic or manual, rule, score', async () => {
    const res = await api().get(`/fhir/Patient/${golden}/$mpi-links`).expect(200);
    const links = values(res.body, 'link').map((l) => Object.fromEntries(l.part!.map((p) => [p.name, p.valueReference?.reference ?? p.valueCode ?? p.valueString ?? p.valueDecimal])));
    expect(links.map((l) => l.patient).sort()).toEqual(['Patient/h-1', 'Patient/h-2', 'Patient/h-3']);
    expect(links.find((l) => l.patient === 'Patient/h-2')).toMatchObject({ linkSource: 'AUTO', rule: 'name-birth-date', rulesVersion: expect.any(String) });
  });

  it('PIXm: one identifier gives every registration and identifier of the person', async () => {
    const res = await api().get(`/fhir/Patient/$ihe-pix?sourceIdentifier=${ID_CARD}|${id}`).expect(200);
    const p = res.body as Parameters;
    expect(values(p, 'targetId').map((x) => x.valueReference!.reference).sort()).toEqual([`Patient/${golden}`, 'Patient/h-1', 'Patient/h-2', 'Patient/h-3'].sort());
    expect(values(p, 'targetIdentifier').map((x) => x.valueIdentifier!.value)).toEqual(expect.arrayContaining(['h-1', 'h-2', 'h-3', golden]));
    const only = await api().get(`/fhir/Patient/$ihe-pix?sourceIdentifier=${ID_CARD}|${id}&targetSystem=${mrnSystem('county-hospital')}`).expect(200);
    expect(values(only.body, 'targetIdentifier').map((x) => x.valueIdentifier!.value)).toEqual(['h-3']);
    const unknown = await api().get(`/fhir/Patient/$ihe-pix?sourceIdentifier=${ID_CARD}|000000000000000000`).expect(404);
    expect(unknown.body.resourceType).toBe('OperationOutcome');
    await api().get('/fhir/Patient/$ihe-pix?sourceIdentifier=nobar').expect(400);
  });

  it('$match scores golden records with a match grade, and ignores strangers', async () => {
    const res = await api()
      .post('/fhir/Patient/$match')
      .set('Content-Type', FHIR)
      .send(params({ name: 'resource', resource: facilityPatient('probe', { name: '刘洋', gender: 'male', birthDate: '1966-05-20', idNumber: id }) }, { name: 'count', valueInteger: 5 }))
      .expect(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('searchset');
    expect(bundle.entry).toHaveLength(1);
    expect(bundle.entry![0].resource!.id).toBe(golden);
    expect(bundle.entry![0].search).toMatchObject({ mode: 'match', score: expect.any(Number), extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/match-grade', valueCode: 'certain' }] });
    const none = await api().post('/fhir/Patient/$match').set('Content-Type', FHIR).send(params({ name: 'resource', resource: facilityPatient('x', { name: '欧阳锋', birthDate: '1950-01-01' }) })).expect(200);
    expect(none.body.entry).toEqual([]);
    await api().post('/fhir/Patient/$match').set('Content-Type', FHIR).send({ resourceType: 'Patient' }).expect(400);
    const deep = `{"resourceType":"Parameters","parameter":[{"name":"resource","part":${'['.repeat(3000)}${']'.repeat(3000)}}]}`;
    expect((await api().post('/fhir/Patient/$match').set('Content-Type', FHIR).send(deep).expect(400)).body.issue[0].expression).toEqual(['Parameters.parameter']);
  });

  it('a golden id in a search, or :mdm on a registration, reads every facility', async () => {
    const byGolden = await api().get(`/fhir/Observation?patient=${golden}`).expect(200);
    expect((byGolden.body as Bundle).entry!.map((e) => e.resource!.id).sort()).toEqual(['h-o1', 'h-o2', 'h-o3']);
    const byMember = await api().get('/fhir/Observation?subject=Patient/h-2').expect(200);
    expect((byMember.body as Bundle).entry!.map((e) => e.resource!.id)).toEqual(['h-o2']);
    const mdm = await api().get('/fhir/Observation?subject:mdm=Patient/h-2').expect(200);
    expect((mdm.body as Bundle).entry!.map((e) => e.resource!.id).sort()).toEqual(['h-o1', 'h-o2', 'h-o3']);
  });

  it('$everything on any registration returns the whole person', async () => {
    const res = await api().get('/fhir/Patient/h-3/$everything').expect(200);
    const refs = (res.body as Bundle).entry!.map((e) => `${e.resource!.resourceType}/${e.resource!.id}`);
    expect(refs).toEqual(expect.arrayContaining(['Observation/h-o1', 'Observation/h-o2', 'Observation/h-o3', `Patient/${golden}`, 'Patient/h-1']));
    expect(refs).not.toContain('Observation/h-o9');
  });

  it('refuses client writes to a golden record', async () => {
    const g = (await api().get(`/fhir/Patient/${golden}`).expect(200)).body as Patient;
    const res = await api().put(`/fhir/Patient/${golden}`).set('Content-Type', FHIR).send({ ...g, gender: 'female' }).expect(403);
    expect(res.body.issue[0].diagnostics).toMatch(/golden record/);
    await api().delete(`/fhir/Patient/${golden}`).expect(403);
  });

  it('the office unlinks, links back, merges and unmerges, each leaving an AuditEvent', async () => {
    const unlink = await api().post('/fhir/Patient/$mpi-unlink').set('Content-Type', FHIR).set('X-Operator', 'office-zhou').send(params({ name: 'patient', valueReference: { reference: 'Patient/h-3' } })).expect(200);
    const apart = values(unlink.body, 'golden')[0].valueReference!.reference!;
    expect(apart).not.toBe(`Patient/${golden}`);
    await api().post('/fhir/Patient/$mpi-link').set('Content-Type', FHIR).send(params({ name: 'patient', valueString: 'h-3' }, { name: 'golden', valueString: golden })).expect(200);
    const merge = await api().post('/fhir/Patient/$mpi-merge').set('Content-Type', FHIR).send(params({ name: 'source', valueString: 'h-9' }, { name: 'target', valueString: golden })).expect(200);
    expect((await api().get('/fhir/Observation?patient=' + golden).expect(200)).body.entry).toHaveLength(4);
    const mergeId = values(merge.body, 'merge')[0].valueId!;
    await api().post('/fhir/Patient/$mpi-unmerge').set('Content-Type', FHIR).send(params({ name: 'merge', valueId: mergeId })).expect(200);
    expect((await api().get('/fhir/Observation?patient=' + golden).expect(200)).body.entry).toHaveLength(3);
    const audit = await api().get('/fhir/AuditEvent?entity=Patient/h-3').expect(200);
    expect((audit.body as Bundle).entry!.length).toBeGreaterThanOrEqual(2);
    // The operator is the authenticated client; a header claiming another name is not believed.
    expect(JSON.stringify(audit.body)).toContain('consortium-office-console');
    expect(JSON.stringify(audit.body)).not.toContain('office-zhou');
    const bad = await api().post('/fhir/Patient/$mpi-unlink').set('Content-Type', FHIR).send(params({ name: 'patient', valueString: 'nobody' })).expect(404);
    expect(bad.body.resourceType).toBe('OperationOutcome');
    await api().post('/fhir/Patient/$mpi-merge').set('Content-Type', FHIR).send({ not: 'parameters' }).expect(400);
  });

  it('lists the review queue and takes decisions on it', async () => {
    // A namesake a generation later, sharing the household's phone: a person decides.
    await api().put('/fhir/Patient/h-4').set('Content-Type', FHIR).send(facilityPatient('h-4', { name: '刘洋', gender: 'male', birthDate: '1992-05-20', phone: '13311112222' }, 'county-hospital')).expect(201);
    const queue = await api().get('/fhir/$mpi-reviews?state=open').expect(200);
    const review = values(queue.body, 'review').map((r) => Object.fromEntries(r.part!.map((p) => [p.name, p.valueReference?.reference ?? p.valueCode ?? p.valueDecimal])));
    expect(review).toContainEqual(expect.objectContaining({ patient: 'Patient/h-4', golden: `Patient/${golden}`, state: 'open' }));
    await api().post('/fhir/Patient/$mpi-review').set('Content-Type', FHIR).send(params({ name: 'patient', valueString: 'h-4' }, { name: 'golden', valueString: golden }, { name: 'decision', valueCode: 'reject' })).expect(200);
    const rejected = await api().get('/fhir/$mpi-reviews?state=rejected').expect(200);
    expect(JSON.stringify(rejected.body)).toContain('Patient/h-4');
    await api().get('/fhir/$mpi-reviews?state=maybe').expect(400);
  });
});
