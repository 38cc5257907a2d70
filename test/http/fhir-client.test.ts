// An unmodified, widely used FHIR client against the listening gateway: if it works here,
// an EHR's FHIR client works unchanged.
import Client from 'fhir-kit-client';
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { DRIVERS } from '../support/stores';
import { startTestServer, type TestServer } from '../support/server';
import { OFFICE, tokenFor } from '../support/auth';
import { ID_SYSTEM, labObservation, MRN_CITY } from '../support/fixtures';

describe.each(DRIVERS)('fhir-kit-client against the gateway on %s', (driver) => {
  let t: TestServer;
  let client: Client;
  beforeAll(async () => {
    t = await startTestServer(driver);
    client = new Client({ baseUrl: t.baseUrl, customHeaders: { Authorization: `Bearer ${await tokenFor(t.app, OFFICE)}` } });
  });
  afterAll(() => t.close());

  it('reads the capability statement', async () => {
    const cs = (await client.capabilityStatement()) as unknown as { fhirVersion: string };
    expect(cs.fhirVersion).toBe('4.0.1');
  });

  it('creates, reads, updates, searches and deletes', async () => {
    const created = (await client.create({
      resourceType: 'Patient',
      body: { resourceType: 'Patient', name: [{ text: '张伟', family: '张', given: ['伟'] }], identifier: [{ system: ID_SYSTEM, value: '11010119800101001X' }] },
    })) as Patient;
    expect(created.id).toBeDefined();
    const read = (await client.read({ resourceType: 'Patient', id: created.id! })) as Patient;
    expect(read.name?.[0].text).toBe('张伟');
    const updated = (await client.update({ resourceType: 'Patient', id: created.id!, body: { ...read, gender: 'male' } })) as Patient;
    expect(updated.meta?.versionId).toBe('2');
    const found = (await client.search({ resourceType: 'Patient', searchParams: { name: '张伟' } })) as Bundle;
    expect(found.entry?.map((e) => e.resource?.id)).toEqual([created.id]);
    const byId = (await client.search({ resourceType: 'Patient', searchParams: { identifier: `${ID_SYSTEM}|11010119800101001X` } })) as Bundle;
    expect(byId.entry).toHaveLength(1);
    const v1 = (await client.vread({ resourceType: 'Patient', id: created.id!, version: '1' })) as Patient;
    expect(v1.gender).toBeUndefined();
    await client.delete({ resourceType: 'Patient', id: created.id! });
    await expect(client.read({ resourceType: 'Patient', id: created.id! })).rejects.toMatchObject({ response: { status: 410 } });
  });

  it('posts a transaction and pages a search with nextPage/prevPage', async () => {
    const entry = [
      { resource: { resourceType: 'Patient', id: 'fk-p', identifier: [{ system: MRN_CITY, value: 'FK-1' }] }, request: { method: 'PUT', url: 'Patient/fk-p' } },
      ...Array.from({ length: 12 }, (_, i) => ({ resource: labObservation(`fk-o${i}`, 'fk-p', '718-7', 10 + i, 'g/dL', `2024-02-${String(i + 1).padStart(2, '0')}`), request: { method: 'PUT', url: `Observation/fk-o${i}` } })),
    ];
    const response = (await client.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry } })) as Bundle;
    expect(response.entry).toHaveLength(13);
    const page1 = (await client.search({ resourceType: 'Observation', searchParams: { 'subject:Patient.identifier': `${MRN_CITY}|FK-1`, _count: 5, _sort: 'date' } })) as Bundle;
    expect(page1.entry!.map((e) => e.resource!.id)).toEqual(['fk-o0', 'fk-o1', 'fk-o2', 'fk-o3', 'fk-o4']);
    const page2 = (await client.nextPage({ bundle: page1 })) as Bundle;
    expect(page2.entry!.map((e) => e.resource!.id)).toEqual(['fk-o5', 'fk-o6', 'fk-o7', 'fk-o8', 'fk-o9']);
    const page3 = (await client.nextPage({ bundle: page2 })) as Bundle;
    expect(page3.entry!.map((e) => (e.resource as Observation).id)).toEqual(['fk-o10', 'fk-o11']);
    const back = (await client.prevPage({ bundle: page3 })) as Bundle;
    expect(back.entry!.map((e) => e.resource!.id)).toEqual(page2.entry!.map((e) => e.resource!.id));
    const everything = (await client.operation({ name: '$everything', resourceType: 'Patient', id: 'fk-p', method: 'GET' })) as Bundle;
    expect(everything.entry).toHaveLength(13);
  });

  it('reads history', async () => {
    const h = (await client.history({ resourceType: 'Observation', id: 'fk-o0' })) as Bundle;
    expect(h.type).toBe('history');
    expect(h.entry).toHaveLength(1);
  });
});
