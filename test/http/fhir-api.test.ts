import request from 'supertest';
import type { Bundle, CapabilityStatement, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { DRIVERS } from '../support/stores';
import { startTestServer, type TestServer } from '../support/server';
import { agentFor, OFFICE } from '../support/auth';
import { labObservation, MRN_CITY, transaction } from '../support/fixtures';

const FHIR = 'application/fhir+json';

describe.each(DRIVERS)('FHIR REST over HTTP on %s', (driver) => {
  let t: TestServer;
  let office: request.Agent;
  beforeAll(async () => {
    t = await startTestServer(driver);
    office = await agentFor(t.app, OFFICE);
  });
  afterAll(() => t.close());
  const api = () => office;

  it('serves a CapabilityStatement listing types, interactions and search parameters', async () => {
    const res = await api().get('/fhir/metadata').expect(200);
    expect(res.headers['content-type']).toContain('application/fhir+json');
    const cs = res.body as CapabilityStatement;
    expect(cs.fhirVersion).toBe('4.0.1');
    const obs = cs.rest![0].resource!.find((r) => r.type === 'Observation')!;
    expect(obs.interaction!.map((i) => i.code)).toEqual(expect.arrayContaining(['read', 'vread', 'update', 'delete', 'create', 'search-type', 'history-instance']));
    expect(obs.searchParam!.map((p) => p.name)).toEqual(expect.arrayContaining(['code', 'patient', 'date', 'value-quantity', '_id', '_lastUpdated']));
    expect(obs.searchParam!.map((p) => p.name)).not.toContain('code-value-quantity');
    for (const type of ['Patient', 'Encounter', 'Condition', 'DiagnosticReport', 'ImagingStudy', 'MedicationRequest', 'Medication', 'ServiceRequest', 'Procedure', 'AllergyIntolerance', 'Organization', 'Practitioner', 'PractitionerRole', 'Location', 'Task', 'Consent', 'AuditEvent', 'Provenance', 'Subscription', 'DocumentReference']) {
      expect(cs.rest![0].resource!.map((r) => r.type)).toContain(type);
    }
  });

  it('create -> 201 with Location and ETag; read, vread; update with If-Match; delete -> 410', async () => {
    const created = await api().post('/fhir/Patient').set('Content-Type', FHIR).send({ resourceType: 'Patient', gender: 'male' }).expect(201);
    const id = (created.body as Patient).id!;
    expect(created.headers.location).toMatch(new RegExp(`/fhir/Patient/${id}/_history/1$`));
    expect(created.headers.etag).toBe('W/"1"');
    await api().get(`/fhir/Patient/${id}`).expect(200).expect('ETag', 'W/"1"');
    await api().put(`/fhir/Patient/${id}`).set('Content-Type', FHIR).set('If-Match', 'W/"1"').send({ resourceType: 'Patient', id, gender: 'female' }).expect(200).expect('ETag', 'W/"2"');
    const stale = await api().put(`/fhir/Patient/${id}`).set('Content-Type', FHIR).set('If-Match', 'W/"1"').send({ resourceType: 'Patient', id, gender: 'other' }).expect(412);
    expect((stale.body as OperationOutcome).resourceType).toBe('OperationOutcome');
    expect((await api().get(`/fhir/Patient/${id}/_history/1`).expect(200)).body.gender).toBe('male');
    const hist = await api().get(`/fhir/Patient/${id}/_history`).expect(200);
    expect((hist.body as Bundle).type).toBe('history');
    expect((hist.body as Bundle).entry!.map((e) => e.response?.etag)).toEqual(['W/"2"', 'W/"1"']);
    await api().delete(`/fhir/Patient/${id}`).expect(204);
    await api().get(`/fhir/Patient/${id}`).expect(410);
  });

  it('conditional create (If-None-Exist) and conditional update (PUT Type?identifier=)', async () => {
    const body = { resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'HTTP-C1' }] };
    const a = await api().post('/fhir/Patient').set('Content-Type', FHIR).set('If-None-Exist', `identifier=${MRN_CITY}|HTTP-C1`).send(body).expect(201);
    const b = await api().post('/fhir/Patient').set('Content-Type', FHIR).set('If-None-Exist', `identifier=${MRN_CITY}|HTTP-C1`).send(body).expect(200);
    expect(b.body.id).toBe(a.body.id);
    const u = await api().put(`/fhir/Patient?identifier=${encodeURIComponent(`${MRN_CITY}|HTTP-C1`)}`).set('Content-Type', FHIR).send({ ...body, gender: 'female' }).expect(200);
    expect(u.body.id).toBe(a.body.id);
    expect(u.body.meta.versionId).toBe('2');
  });

  it('search returns a searchset with self/next/previous links that page through the results', async () => {
    await api().post('/fhir').set('Content-Type', FHIR).send(transaction(Array.from({ length: 25 }, (_, i) => labObservation(`page-${i}`, 'pg', '718-7', i, 'g/dL', '2024-01-01')))).expect(200);
    const first = await api().get('/fhir/Observation?patient=pg&_count=10&_total=accurate').expect(200);
    const b1 = first.body as Bundle;
    expect(b1.type).toBe('searchset');
    expect(b1.total).toBe(25);
    expect(b1.entry).toHaveLength(10);
    expect(b1.link!.find((l) => l.relation === 'self')!.url).toContain('/fhir/Observation?patient=pg');
    const ids = b1.entry!.map((e) => e.resource!.id);
    let next = b1.link!.find((l) => l.relation === 'next')!.url;
    let last: Bundle = b1;
    while (next) {
      const res = await api().get(new URL(next).pathname + new URL(next).search).expect(200);
      last = res.body as Bundle;
      ids.push(...last.entry!.map((e) => e.resource!.id));
      next = last.link!.find((l) => l.relation === 'next')?.url ?? '';
    }
    expect(ids).toHaveLength(25);
    expect(new Set(ids).size).toBe(25);
    const prev = last.link!.find((l) => l.relation === 'previous')!.url;
    const back = await api().get(new URL(prev).pathname + new URL(prev).search).expect(200);
    expect((back.body as Bundle).entry!.map((e) => e.resource!.id)).toEqual(ids.slice(10, 20));
  });

  it('_summary=count, _elements, _include over HTTP', async () => {
    const count = await api().get('/fhir/Observation?patient=pg&_summary=count').expect(200);
    expect(count.body.total).toBe(25);
    expect(count.body.entry).toEqual([]);
    const el = await api().get('/fhir/Observation?patient=pg&_count=1&_elements=status').expect(200);
    const r = el.body.entry[0].resource;
    expect(Object.keys(r).sort()).toEqual(['id', 'meta', 'resourceType', 'status']);
    expect(r.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
  });

  it('lenient search reports ignored parameters; strict refuses them', async () => {
    const lenient = await api().get('/fhir/Patient?foo=bar').expect(200);
    const outcome = (lenient.body as Bundle).entry!.find((e) => e.search?.mode === 'outcome')!.resource as OperationOutcome;
    expect(outcome.issue[0].diagnostics).toContain("'foo'");
    const strict = await api().get('/fhir/Patient?foo=bar').set('Prefer', 'handling=strict').expect(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
  });

  it('a transaction Bundle answers a transaction-response', async () => {
    const res = await api()
      .post('/fhir')
      .set('Content-Type', FHIR)
      .send({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0d5b5e1e-1111-4111-8111-111111111111', resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'urn:uuid:0d5b5e1e-1111-4111-8111-111111111111' } }, request: { method: 'POST', url: 'Encounter' } },
        ],
      })
      .expect(200);
    const b = res.body as Bundle;
    expect(b.type).toBe('transaction-response');
    expect(b.entry!.map((e) => e.response!.status)).toEqual(['201 Created', '201 Created']);
    expect(b.entry![1].resource!.resourceType).toBe('Encounter');
    expect((b.entry![1].resource as { subject: { reference: string } }).subject.reference).toBe(`Patient/${b.entry![0].resource!.id}`);
  });

  it('Patient/$everything over HTTP with _count paging', async () => {
    await api().put('/fhir/Patient/pg').set('Content-Type', FHIR).send({ resourceType: 'Patient', id: 'pg' }).expect(201);
    const res = await api().get('/fhir/Patient/pg/$everything?_count=20').expect(200);
    const b = res.body as Bundle;
    expect(b.entry).toHaveLength(20);
    const next = b.link!.find((l) => l.relation === 'next')!.url;
    const rest = await api().get(new URL(next).pathname + new URL(next).search).expect(200);
    expect((rest.body as Bundle).entry).toHaveLength(6);
    await api().get('/fhir/Patient/nobody/$everything').expect(404);
  });

  describe('errors are OperationOutcomes with the right status', () => {
    const expectOutcome = (body: unknown): OperationOutcome => {
      expect((body as OperationOutcome).resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/);
      return body as OperationOutcome;
    };

    it('400 for invalid JSON', async () => {
      const res = await api().post('/fhir/Patient').set('Content-Type', FHIR).send('{"resourceType": "Patient",').expect(400);
      expect(expectOutcome(res.body).issue[0].diagnostics).toContain('Invalid JSON');
    });

    it('400 for an invalid resource, naming the path', async () => {
      const res = await api().post('/fhir/Observation').set('Content-Type', FHIR).send({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveDateTime: '2024-02-30x' }).expect(400);
      expect(expectOutcome(res.body).issue[0].expression).toEqual(['Observation.effectiveDateTime']);
    });

    it('400 for a body nested thousands of levels deep, naming the top-level element, not a stack overflow', async () => {
      const depth = 2000;
      const extension = `[${'{"url":"http://example.org/x","extension":['.repeat(depth)}{"url":"http://example.org/x","valueString":"x"}${']}'.repeat(depth)}]`;
      const res = await api().post('/fhir/Patient').set('Content-Type', FHIR).send(`{"resourceType":"Patient","extension":${extension}}`).expect(400);
      expect(expectOutcome(res.body).issue[0].expression).toEqual(['Patient.extension']);
      const bundle = `{"resourceType":"Bundle","type":"transaction","entry":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      expect(expectOutcome((await api().post('/fhir').set('Content-Type', FHIR).send(bundle).expect(400)).body).issue[0].expression).toEqual(['Bundle.entry']);
      // Ordinary nesting is untouched.
      const nested = { resourceType: 'Patient', extension: [{ url: 'http://example.org/a', extension: [{ url: 'http://example.org/b', valueString: 'x' }] }] };
      await api().post('/fhir/Patient').set('Content-Type', FHIR).send(nested).expect(201);
    });

    it('400 for a body of the wrong type, a missing body, or an id mismatch', async () => {
      expectOutcome((await api().post('/fhir/Patient').set('Content-Type', FHIR).send({ resourceType: 'Observation' }).expect(400)).body);
      expectOutcome((await api().post('/fhir/Patient').expect(400)).body);
      expectOutcome((await api().put('/fhir/Patient/a').set('Content-Type', FHIR).send({ resourceType: 'Patient', id: 'b' }).expect(400)).body);
    });

    it('404 for unknown types, resources and endpoints', async () => {
      expectOutcome((await api().get('/fhir/Nonsense/1').expect(404)).body);
      expectOutcome((await api().get('/fhir/Patient/does-not-exist').expect(404)).body);
      expectOutcome((await api().get('/fhir/Patient/x/y/z/w').expect(404)).body);
    });

    it('400 for bad search values, with the parameter named', async () => {
      const res = await api().get('/fhir/Observation?date=2024-99').expect(400);
      expect(expectOutcome(res.body).issue[0].expression).toEqual(['date']);
    });

    it('400 for a _since PostgreSQL cannot read, on history and $everything, naming _since', async () => {
      // Date.parse takes all of these; the store's timestamptz takes none.
      for (const since of ['2024-13-45', '99999', '-271821-04-20', '+275760-09-13']) {
        for (const path of ['/fhir/_history', '/fhir/Patient/_history', '/fhir/Patient/pg/$everything']) {
          const res = await api().get(`${path}?_since=${encodeURIComponent(since)}`).expect(400);
          expect(expectOutcome(res.body).issue[0].expression).toEqual(['_since']);
        }
      }
      // A partial date is the start of its range, as before.
      expect((await api().get('/fhir/Patient/_history?_since=2024').expect(200)).body.type).toBe('history');
    });

    it('400 for a history _cursor with values of the wrong type, naming _cursor', async () => {
      for (const values of [['x', 1], [{}, 1], ['2024-03-01T00:00:00Z', ''], ['2024-03-01T00:00:00Z']]) {
        const cursor = Buffer.from(JSON.stringify([values, 1])).toString('base64url');
        const res = await api().get(`/fhir/Patient/_history?_cursor=${cursor}`).expect(400);
        expect(expectOutcome(res.body).issue[0].expression).toEqual(['_cursor']);
      }
    });

    it('412 for a conditional create matching several', async () => {
      const body = { resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'DUP' }] };
      await api().post('/fhir/Patient').set('Content-Type', FHIR).send(body).expect(201);
      await api().post('/fhir/Patient').set('Content-Type', FHIR).send(body).expect(201);
      expectOutcome((await api().post('/fhir/Patient').set('Content-Type', FHIR).set('If-None-Exist', 'identifier=DUP').send(body).expect(412)).body);
    });
  });
});
