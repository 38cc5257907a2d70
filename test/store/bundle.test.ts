import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { DRIVERS, openTestStore, type TestStore } from '../support/stores';
import { labObservation, MRN_CITY } from '../support/fixtures';
import { processBundle } from '../../store/bundle';
import { FhirError } from '../../store/errors';
import type { Repository } from '../../store/repository';

describe.each(DRIVERS)('batch and transaction Bundles on %s', (driver) => {
  let store: TestStore;
  let repo: Repository;
  beforeAll(async () => {
    store = await openTestStore(driver);
    repo = store.repo;
  });
  afterAll(() => store.close());

  it('rewrites urn:uuid references to the ids it assigns', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:6f1c0e1a-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'TX-1' }] }, request: { method: 'POST', url: 'Patient' } },
        {
          fullUrl: 'urn:uuid:6f1c0e1a-0000-4000-8000-000000000002',
          resource: { ...labObservation('ignored', 'x', '718-7', 12, 'g/dL', '2024-01-01'), id: undefined, subject: { reference: 'urn:uuid:6f1c0e1a-0000-4000-8000-000000000001' } } as Observation,
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    const result = await processBundle(repo, bundle);
    expect(result.type).toBe('transaction-response');
    expect(result.entries.map((e) => e.status)).toEqual(['201 Created', '201 Created']);
    const patientRef = result.entries[0].stored!.reference;
    const obs = result.entries[1].stored!.resource as Observation;
    expect(obs.subject?.reference).toBe(patientRef);
    expect((await repo.search('Observation', [['patient', patientRef]])).matches).toHaveLength(1);
    expect(result.entries[0].location).toMatch(/^Patient\/[0-9a-f-]+\/_history\/1$/);
  });

  it('is all or nothing: one invalid entry rolls back every write and names the entry', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: 'rb-1' }, request: { method: 'PUT', url: 'Patient/rb-1' } },
        { resource: { resourceType: 'Patient', id: 'rb-2', birthDate: 'yesterday' } as Patient, request: { method: 'PUT', url: 'Patient/rb-2' } },
      ],
    };
    let error: FhirError | undefined;
    try {
      await processBundle(repo, bundle);
    } catch (e) {
      error = e as FhirError;
    }
    expect(error).toBeInstanceOf(FhirError);
    expect(error!.status).toBe(400);
    expect(error!.outcome.issue[0].expression).toEqual(['Bundle.entry[1].resource.birthDate']);
    await expect(repo.read('Patient', 'rb-1')).rejects.toMatchObject({ status: 404 });
  });

  it('rolls back when a later entry fails a precondition', async () => {
    await repo.update({ resourceType: 'Patient', id: 'pre-1', gender: 'male' });
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: 'pre-2' }, request: { method: 'PUT', url: 'Patient/pre-2' } },
        { resource: { resourceType: 'Patient', id: 'pre-1', gender: 'female' }, request: { method: 'PUT', url: 'Patient/pre-1', ifMatch: 'W/"7"' } },
      ],
    };
    await expect(processBundle(repo, bundle)).rejects.toMatchObject({ status: 412 });
    await expect(repo.read('Patient', 'pre-2')).rejects.toMatchObject({ status: 404 });
    expect(((await repo.read('Patient', 'pre-1')).resource as Patient).gender).toBe('male');
  });

  it('resolves conditional references, conditional creates and conditional updates', async () => {
    await repo.update({ resourceType: 'Patient', id: 'cr-1', identifier: [{ system: MRN_CITY, value: 'CR-1' }] });
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: labObservation('cr-obs', 'x', '718-7', 12, 'g/dL', '2024-01-01', { subject: { reference: `Patient?identifier=${MRN_CITY}|CR-1` } } as Partial<Observation>), request: { method: 'PUT', url: 'Observation/cr-obs' } },
        { resource: { resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'CR-1' }] }, request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN_CITY}|CR-1` } },
        { resource: { resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'CR-2' }], gender: 'female' }, request: { method: 'PUT', url: `Patient?identifier=${MRN_CITY}|CR-2` } },
      ],
    };
    const result = await processBundle(repo, bundle);
    expect(((await repo.read('Observation', 'cr-obs')).resource as Observation).subject?.reference).toBe('Patient/cr-1');
    expect(result.entries[1].status).toBe('200 OK');
    expect(result.entries[1].stored?.id).toBe('cr-1');
    expect(result.entries[2].status).toBe('201 Created');
    expect((await repo.search('Patient', [['identifier', 'CR-2']])).matches).toHaveLength(1);
  });

  it('fails the transaction when a conditional reference matches nothing', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: labObservation('cr-none', 'x', '718-7', 1, 'g/dL', '2024-01-01', { subject: { reference: 'Patient?identifier=NOBODY' } } as Partial<Observation>), request: { method: 'PUT', url: 'Observation/cr-none' } }],
    };
    await expect(processBundle(repo, bundle)).rejects.toMatchObject({ status: 412 });
  });

  it('deletes and reads inside a transaction', async () => {
    await repo.update({ resourceType: 'Patient', id: 'tx-del' });
    await repo.update({ resourceType: 'Patient', id: 'tx-read', gender: 'other' });
    const result = await processBundle(repo, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'DELETE', url: 'Patient/tx-del' } },
        { request: { method: 'GET', url: 'Patient/tx-read' } },
        { request: { method: 'GET', url: 'Patient?_id=tx-read' } },
      ],
    });
    expect(result.entries.map((e) => e.status)).toEqual(['204 No Content', '200 OK', '200 OK']);
    expect((result.entries[1].stored!.resource as Patient).gender).toBe('other');
    expect(result.entries[2].searchset!.map((s) => s.id)).toEqual(['tx-read']);
    await expect(repo.read('Patient', 'tx-del')).rejects.toMatchObject({ status: 410 });
  });

  it('batch entries succeed or fail independently', async () => {
    const result = await processBundle(repo, {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', id: 'b-ok' }, request: { method: 'PUT', url: 'Patient/b-ok' } },
        { resource: { resourceType: 'Patient', id: 'b-bad', gender: 'robot' } as unknown as Patient, request: { method: 'PUT', url: 'Patient/b-bad' } },
        { request: { method: 'GET', url: 'Patient/b-missing' } },
      ],
    });
    expect(result.type).toBe('batch-response');
    expect(result.entries.map((e) => e.status)).toEqual(['201 Created', '400', '404']);
    expect(result.entries[1].outcome?.issue[0].expression).toEqual(['Bundle.entry[1].resource.gender']);
    await expect(repo.read('Patient', 'b-ok')).resolves.toBeDefined();
  });

  it('rejects malformed bundles', async () => {
    await expect(processBundle(repo, { resourceType: 'Bundle', type: 'collection' })).rejects.toMatchObject({ status: 400 });
    await expect(processBundle(repo, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient' } }] })).rejects.toMatchObject({ status: 400 });
    await expect(
      processBundle(repo, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Observation' } }] }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      processBundle(repo, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient', subject: { reference: 'urn:uuid:nowhere' } } as unknown as Patient, request: { method: 'POST', url: 'Patient' } }] }),
    ).rejects.toMatchObject({ status: 400 });
  });

  it('rejects a bundle whose entries are not entries with a 400 naming the entry, not a TypeError', async () => {
    const refusal = async (entry: unknown): Promise<string[] | undefined> => {
      try {
        await processBundle(repo, { resourceType: 'Bundle', type: 'transaction', entry } as unknown as Bundle);
      } catch (e) {
        if (e instanceof FhirError && e.status === 400) return e.expression;
        throw e;
      }
      throw new Error('expected a 400');
    };
    expect(await refusal({})).toEqual(['Bundle.entry']);
    expect(await refusal('entries')).toEqual(['Bundle.entry']);
    expect(await refusal([null])).toEqual(['Bundle.entry[0]']);
    expect(await refusal([{ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient' } }, 'entry'])).toEqual(['Bundle.entry[1]']);
    expect(await refusal([{ request: { method: 'POST', url: ['Patient'] }, resource: { resourceType: 'Patient' } }])).toEqual(['Bundle.entry[0].request.url']);
    expect(await refusal([{ request: null }])).toEqual(['Bundle.entry[0].request']);
    expect(await refusal([{ fullUrl: 5, request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient' } }])).toEqual(['Bundle.entry[0].fullUrl']);
    // In a batch too: the shape is checked before any entry runs.
    await expect(processBundle(repo, { resourceType: 'Bundle', type: 'batch', entry: [null] } as unknown as Bundle)).rejects.toMatchObject({ status: 400 });
  });

  it('concurrent transactions writing overlapping resources do not deadlock', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `dl-${i}`);
    const bundleOf = (order: string[], gender: 'male' | 'female'): Bundle => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: order.map((id) => ({ resource: { resourceType: 'Patient', id, gender }, request: { method: 'PUT', url: `Patient/${id}` } })),
    });
    await Promise.all([
      processBundle(repo, bundleOf(ids, 'male')),
      processBundle(repo, bundleOf([...ids].reverse(), 'female')),
      processBundle(repo, bundleOf(ids, 'female')),
    ]);
    const versions = await Promise.all(ids.map((id) => repo.read('Patient', id)));
    expect(versions.every((v) => Number(v.versionId) >= 1)).toBe(true);
  });
});
