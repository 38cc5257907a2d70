import request from 'supertest';
import type { Bundle, Parameters } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../support/server';
import { agentFor, OFFICE } from '../support/auth';
import { labObservation } from '../support/fixtures';
import { facilityPatient } from '../support/people';

const FHIR = 'application/fhir+json';
const params = (...parameter: Parameters['parameter'] & object) => ({ resourceType: 'Parameters', parameter });
const condition = { resourceType: 'Condition', id: 'sc-c1', subject: { reference: 'Patient/sc-p1' }, code: { text: '高血压' } };

describe('SMART scopes on the FHIR API (PGlite, patient index)', () => {
  let t: TestServer;
  let office: request.Agent;
  /** City-hospital agents by granted scope, made on first use. */
  const agents = new Map<string, request.Agent>();
  const as = async (scope: string): Promise<request.Agent> => {
    if (!agents.has(scope)) agents.set(scope, await agentFor(t.app, 'city-hospital', scope));
    return agents.get(scope)!;
  };

  beforeAll(async () => {
    t = await startTestServer('pglite', { patientIndex: true });
    office = await agentFor(t.app, OFFICE);
    await office.put('/fhir/Patient/sc-p1').set('Content-Type', FHIR).send(facilityPatient('sc-p1', { name: '赵磊', gender: 'male', birthDate: '1970-01-02' })).expect(201);
    await office.put('/fhir/Observation/sc-o1').set('Content-Type', FHIR).send(labObservation('sc-o1', 'sc-p1', '2345-7', 5.4, 'mmol/L', '2026-03-01')).expect(201);
    await office.put('/fhir/Condition/sc-c1').set('Content-Type', FHIR).send(condition).expect(201);
  });
  afterAll(() => t.close());

  const observation = labObservation('sc-o2', 'sc-p1', '2345-7', 6.1, 'mmol/L', '2026-03-02');
  // [interaction, method, path, body, the scope that allows it, the scope named when it is missing]
  const interactions: [string, string, string, object | undefined, string, string][] = [
    ['read', 'GET', '/fhir/Observation/sc-o1', undefined, 'system/Observation.r', 'system/Observation.r'],
    ['vread', 'GET', '/fhir/Observation/sc-o1/_history/1', undefined, 'system/Observation.r', 'system/Observation.r'],
    ['history', 'GET', '/fhir/Observation/sc-o1/_history', undefined, 'system/Observation.r', 'system/Observation.r'],
    ['type history', 'GET', '/fhir/Observation/_history', undefined, 'system/Observation.r', 'system/Observation.r'],
    ['search', 'GET', '/fhir/Observation?patient=sc-p1', undefined, 'system/Observation.s', 'system/Observation.s'],
    ['search by POST', 'POST', '/fhir/Observation/_search', undefined, 'system/Observation.s', 'system/Observation.s'],
    ['create', 'POST', '/fhir/Observation', { ...observation, id: undefined }, 'system/Observation.c', 'system/Observation.c'],
    ['update', 'PUT', '/fhir/Observation/sc-o2', observation, 'system/Observation.u', 'system/Observation.u'],
    ['conditional update', 'PUT', '/fhir/Observation?identifier=none|sc-o3', { ...observation, id: undefined }, 'system/Observation.u', 'system/Observation.u'],
    ['delete', 'DELETE', '/fhir/Observation/sc-o2', undefined, 'system/Observation.d', 'system/Observation.d'],
  ];

  it.each(interactions)('%s: 403 naming the missing scope without it, allowed with it', async (_name, method, path, body, allowing, named) => {
    const send = (a: request.Agent) => {
      const r = method === 'GET' ? a.get(path) : method === 'DELETE' ? a.delete(path) : method === 'PUT' ? a.put(path) : a.post(path);
      return body ? r.set('Content-Type', FHIR).send(body) : method === 'POST' ? r.type('form').send('patient=sc-p1') : r;
    };
    // Every other letter for Observation, and everything for the other types: only the one letter is missing.
    const letters = 'cruds'.replace(allowing.slice(-1), '');
    const refused = await send(await as(`system/Observation.${letters} system/Patient.cruds`)).expect(403);
    expect(refused.body.resourceType).toBe('OperationOutcome');
    expect(refused.body.issue[0]).toMatchObject({ code: 'forbidden', diagnostics: expect.stringContaining(named) });
    const allowed = await send(await as(`${allowing} system/Patient.cruds`));
    expect(allowed.status).toBeLessThan(300);
  });

  it('a transaction with one forbidden entry fails whole, and nothing of it is written', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: facilityPatient('sc-p2', { name: '钱芳', gender: 'female', birthDate: '1980-05-06' }), request: { method: 'PUT', url: 'Patient/sc-p2' } },
        { resource: labObservation('sc-o4', 'sc-p2', '2345-7', 5, 'mmol/L', '2026-03-03'), request: { method: 'PUT', url: 'Observation/sc-o4' } },
      ],
    };
    const res = await (await as('system/Patient.cru system/Observation.rs')).post('/fhir').set('Content-Type', FHIR).send(bundle).expect(403);
    expect(res.body.issue[0].diagnostics).toMatch(/^Bundle\.entry\[1\]: .*system\/Observation\.u/);
    await office.get('/fhir/Patient/sc-p2').expect(404);
  });

  it('a malformed entry request is a 400 naming the entry, not a scope check that falls over', async () => {
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 5, url: [] } }] };
    const res = await (await as('system/Patient.cru')).post('/fhir').set('Content-Type', FHIR).send(bundle).expect(400);
    expect(res.body.issue[0].expression[0]).toMatch(/^Bundle\.entry\[0\]/);
  });

  it('in a batch each forbidden entry fails alone, in its own place', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'DELETE', url: 'Condition/sc-c1' } },
        { resource: facilityPatient('sc-p3', { name: '孙伟', gender: 'male', birthDate: '1975-07-08' }), request: { method: 'PUT', url: 'Patient/sc-p3' } },
        { request: { method: 'GET', url: 'Observation?patient=sc-p1' } },
        { request: { method: 'GET', url: 'Observation/sc-o1' } },
      ],
    };
    const res = await (await as('system/Patient.cru system/Observation.r')).post('/fhir').set('Content-Type', FHIR).send(bundle).expect(200);
    const entries = (res.body as Bundle).entry!;
    expect(entries.map((e) => e.response!.status)).toEqual(['403', '201 Created', '403', '200 OK']);
    expect(entries[0].response!.outcome!.issue[0].diagnostics).toContain('system/Condition.d');
    expect(entries[2].response!.outcome!.issue[0].diagnostics).toContain('system/Observation.s');
    await office.get('/fhir/Condition/sc-c1').expect(200);
  });

  it('$everything needs Patient r and returns only the types the scopes may read', async () => {
    const narrow = await as('system/Patient.rs system/Observation.rs');
    const res = await narrow.get('/fhir/Patient/sc-p1/$everything').expect(200);
    const types = new Set((res.body as Bundle).entry!.map((e) => e.resource!.resourceType));
    expect(types.has('Observation')).toBe(true);
    expect(types.has('Patient')).toBe(true);
    expect(types.has('Condition')).toBe(false);
    const all = await office.get('/fhir/Patient/sc-p1/$everything').expect(200);
    expect((all.body as Bundle).entry!.map((e) => e.resource!.resourceType)).toContain('Condition');
    expect((await narrow.get('/fhir/Patient/sc-p1/$everything?_type=Condition').expect(403)).body.issue[0].diagnostics).toContain('system/Condition.r');
    await (await as('system/Observation.rs')).get('/fhir/Patient/sc-p1/$everything').expect(403);
  });

  it('_include and _revinclude bring back only the types the caller may read', async () => {
    const path = '/fhir/Observation?_id=sc-o1&_include=Observation:subject';
    const types = async (a: request.Agent) => ((await a.get(path).expect(200)).body as Bundle).entry!.map((e) => `${e.search!.mode} ${e.resource!.resourceType}`).sort();
    expect(await types(await as('system/Observation.rs'))).toEqual(['match Observation']);
    expect(await types(await as('system/Observation.rs system/Patient.r'))).toEqual(['include Patient', 'match Observation']);
  });

  it('a chained parameter needs search on the type it reaches', async () => {
    const path = `/fhir/Observation?subject:Patient.birthdate=1970-01-02`;
    const refused = await (await as('system/Observation.rs system/Patient.r')).get(path).expect(403);
    expect(refused.body.issue[0].diagnostics).toContain('system/Patient.s');
    const found = await (await as('system/Observation.rs system/Patient.s')).get(path).expect(200);
    expect((found.body as Bundle).entry!.map((e) => e.resource!.id)).toContain('sc-o1');
  });

  it('$ihe-pix and $match need Patient r and s', async () => {
    const readOnly = await as('system/Patient.r');
    await readOnly.get('/fhir/Patient/$ihe-pix?sourceIdentifier=urn:oid:2.16.156.10011.1.11.1|sc-p1').expect(403);
    const match = params({ name: 'resource', resource: facilityPatient('x', { name: '赵磊', birthDate: '1970-01-02' }) });
    await readOnly.post('/fhir/Patient/$match').set('Content-Type', FHIR).send(match).expect(403);
    await (await as('system/Patient.rs')).post('/fhir/Patient/$match').set('Content-Type', FHIR).send(match).expect(200);
  });

  it('the patient index office operations, AuditEvents and whole-server history are the office\'s alone', async () => {
    const city = await as('system/*.cruds');
    const golden = (await city.get('/fhir/Patient/sc-p1/$mpi-links').expect(200)).body.parameter[0].valueReference.reference;
    const operations: [string, object][] = [
      ['$mpi-link', params({ name: 'patient', valueString: 'sc-p1' }, { name: 'golden', valueString: golden })],
      ['$mpi-unlink', params({ name: 'patient', valueString: 'sc-p1' })],
      ['$mpi-merge', params({ name: 'source', valueString: 'sc-p1' }, { name: 'target', valueString: golden })],
      ['$mpi-unmerge', params({ name: 'merge', valueId: 'm-1' })],
      ['$mpi-review', params({ name: 'patient', valueString: 'sc-p1' }, { name: 'golden', valueString: golden }, { name: 'decision', valueCode: 'reject' })],
    ];
    for (const [op, body] of operations) {
      const res = await city.post(`/fhir/Patient/${op}`).set('Content-Type', FHIR).send(body);
      expect([op, res.status, res.body.issue?.[0]?.code]).toEqual([op, 403, 'forbidden']);
    }
    await city.get('/fhir/$mpi-reviews').expect(403);
    await office.get('/fhir/$mpi-reviews').expect(200);
    await city.get('/fhir/AuditEvent').expect(403);
    await city.get('/fhir/_history').expect(403);
    await office.get('/fhir/AuditEvent').expect(200);
    await office.get('/fhir/_history').expect(200);
    const batch = await city.post('/fhir').set('Content-Type', FHIR).send({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'AuditEvent' } }] }).expect(200);
    expect(batch.body.entry[0].response.status).toBe('403');
  });
});
