import type { Observation, Patient, Resource } from '@medplum/fhirtypes';
import { DRIVERS, openTestStore, type TestStore } from '../support/stores';
import { labObservation, MRN_CITY } from '../support/fixtures';
import { FhirError } from '../../store/errors';
import type { Repository } from '../../store/repository';

async function failure(p: Promise<unknown>): Promise<FhirError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error('expected a FhirError');
}

describe.each(DRIVERS)('resources and history on %s', (driver) => {
  let store: TestStore;
  let repo: Repository;
  beforeAll(async () => {
    store = await openTestStore(driver);
    repo = store.repo;
  });
  afterAll(() => store.close());

  it('create assigns id, versionId and lastUpdated, and read returns the same', async () => {
    const before = Date.now();
    const { status, stored } = await repo.create({ resourceType: 'Patient', gender: 'female', meta: { versionId: '99', tag: [{ code: 'demo' }] } } as Patient);
    expect(status).toBe(201);
    expect(stored.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(stored.versionId).toBe('1');
    const read = await repo.read('Patient', stored.id);
    const p = read.resource as Patient;
    expect(p.meta?.versionId).toBe('1');
    expect(p.meta?.tag).toEqual([{ code: 'demo' }]);
    expect(Date.parse(p.meta!.lastUpdated!)).toBeGreaterThanOrEqual(before - 1000);
    expect(p.gender).toBe('female');
  });

  it('update makes a new version; vread returns each; history lists all newest first', async () => {
    const { stored } = await repo.update({ resourceType: 'Patient', id: 'h1', gender: 'male' });
    expect(stored.versionId).toBe('1');
    const v2 = await repo.update({ resourceType: 'Patient', id: 'h1', gender: 'female' });
    expect(v2.status).toBe(200);
    expect(v2.stored.versionId).toBe('2');
    expect(((await repo.vread('Patient', 'h1', '1')).resource as Patient).gender).toBe('male');
    expect(((await repo.vread('Patient', 'h1', '2')).resource as Patient).gender).toBe('female');
    const h = await repo.history({ type: 'Patient', id: 'h1' }, { count: 10 });
    expect(h.entries.map((e) => e.versionId)).toEqual(['2', '1']);
  });

  it('an unchanged update keeps the version (a resend does not grow history)', async () => {
    await repo.update({ resourceType: 'Patient', id: 'same', gender: 'male' });
    const again = await repo.update({ resourceType: 'Patient', id: 'same', gender: 'male' });
    expect(again.stored.versionId).toBe('1');
    expect(again.status).toBe(200);
  });

  it('If-Match: the current version succeeds, a stale one is 412', async () => {
    await repo.update({ resourceType: 'Patient', id: 'm1', gender: 'male' });
    await repo.update({ resourceType: 'Patient', id: 'm1', gender: 'female' }, { ifMatch: '1' });
    const e = await failure(repo.update({ resourceType: 'Patient', id: 'm1', gender: 'other' }, { ifMatch: '1' }));
    expect(e.status).toBe(412);
    expect(((await repo.read('Patient', 'm1')).resource as Patient).gender).toBe('female');
  });

  it('delete leaves a tombstone: read 410, vread of old versions still works, search excludes it', async () => {
    await repo.update({ resourceType: 'Patient', id: 'd1', gender: 'male', identifier: [{ system: MRN_CITY, value: 'DEL-1' }] });
    expect((await repo.search('Patient', [['identifier', 'DEL-1']])).matches).toHaveLength(1);
    await repo.delete('Patient', 'd1');
    expect((await failure(repo.read('Patient', 'd1'))).status).toBe(410);
    expect(((await repo.vread('Patient', 'd1', '1')).resource as Patient).gender).toBe('male');
    expect((await failure(repo.vread('Patient', 'd1', '2'))).status).toBe(410);
    expect((await repo.search('Patient', [['identifier', 'DEL-1']])).matches).toHaveLength(0);
    const h = await repo.history({ type: 'Patient', id: 'd1' }, { count: 10 });
    expect(h.entries.map((e) => [e.versionId, e.deleted])).toEqual([['2', true], ['1', false]]);
    // Re-creating after delete continues the version line.
    const again = await repo.update({ resourceType: 'Patient', id: 'd1', gender: 'female' });
    expect(again.stored.versionId).toBe('3');
    expect(again.status).toBe(201);
  });

  it('every stored resource names the Patients it is about, without a parse: written, read, searched, included, history, $everything', async () => {
    await repo.update({ resourceType: 'Patient', id: 'pp-1' } as Patient);
    const created = await repo.update(labObservation('pp-o1', 'pp-1', '718-7', 12.1, 'g/dL', '2024-02-01'));
    expect(created.stored.patients).toEqual(['Patient/pp-1']);
    const report = { resourceType: 'DiagnosticReport', id: 'pp-r1', status: 'final', code: { text: 'CBC' }, subject: { reference: 'Patient/pp-1' }, result: [{ reference: 'Observation/pp-o1' }] } as Resource;
    await repo.update(report);
    expect((await repo.update(report)).stored.patients).toEqual(['Patient/pp-1']);
    expect((await repo.read('Patient', 'pp-1')).patients).toEqual(['Patient/pp-1']);
    expect((await repo.vread('Observation', 'pp-o1', '1')).patients).toEqual(['Patient/pp-1']);
    const found = await repo.search('DiagnosticReport', [['_id', 'pp-r1'], ['_include', 'DiagnosticReport:result']]);
    expect([...found.matches, ...found.included].map((s) => [s.reference, s.patients])).toEqual([
      ['DiagnosticReport/pp-r1', ['Patient/pp-1']],
      ['Observation/pp-o1', ['Patient/pp-1']],
    ]);
    expect((await repo.history({ type: 'Observation', id: 'pp-o1' }, { count: 10 })).entries[0].patients).toEqual(['Patient/pp-1']);
    const everything = await repo.everything(['pp-1'], { count: 10 });
    expect(everything.entries.map((s) => s.patients)).toEqual([['Patient/pp-1'], ['Patient/pp-1'], ['Patient/pp-1']]);
    const org = await repo.update({ resourceType: 'Organization', id: 'pp-org', name: '社区' } as Resource);
    expect(org.stored.patients).toEqual([]);
    expect((await repo.read('Organization', 'pp-org')).patients).toEqual([]);
  });

  it('unknown resources are 404', async () => {
    expect((await failure(repo.read('Patient', 'nope'))).status).toBe(404);
    expect((await failure(repo.vread('Patient', 'h1', '9'))).status).toBe(404);
    expect((await failure(repo.history({ type: 'Patient', id: 'nope' }, { count: 10 }))).status).toBe(404);
  });

  it('rejects structurally invalid resources with a 400 naming the path, and stores nothing', async () => {
    const bad = { resourceType: 'Observation', id: 'bad1', status: 'final', code: { text: 'x' }, valueQuantity: { value: 'high' } };
    const e = await failure(repo.update(bad as unknown as Observation));
    expect(e.status).toBe(400);
    expect(e.outcome.issue[0].expression).toEqual(['Observation.valueQuantity.value']);
    const unknownElement = await failure(repo.update({ resourceType: 'Patient', id: 'bad2', nmae: [] } as unknown as Patient));
    expect(unknownElement.outcome.issue[0].expression).toEqual(['Patient.nmae']);
    expect((await failure(repo.read('Observation', 'bad1'))).status).toBe(404);
  });

  it('rejects invalid ids', async () => {
    const e = await failure(repo.update({ resourceType: 'Patient', id: 'has space' } as Patient));
    expect(e.status).toBe(400);
  });

  it('conditional create returns the existing match instead of a copy; several matches are 412', async () => {
    const p: Patient = { resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'COND-1' }] };
    const a = await repo.create(p, { ifNoneExist: [['identifier', `${MRN_CITY}|COND-1`]] });
    const b = await repo.create(p, { ifNoneExist: [['identifier', `${MRN_CITY}|COND-1`]] });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.stored.id).toBe(a.stored.id);
    await repo.create(p);
    const e = await failure(repo.create(p, { ifNoneExist: [['identifier', `${MRN_CITY}|COND-1`]] }));
    expect(e.status).toBe(412);
  });

  it('concurrent conditional creates of the same identifier produce one resource', async () => {
    const p: Patient = { resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'RACE-1' }] };
    const results = await Promise.all([1, 2, 3, 4].map(() => repo.create(p, { ifNoneExist: [['identifier', `${MRN_CITY}|RACE-1`]] })));
    expect(new Set(results.map((r) => r.stored.id)).size).toBe(1);
    expect((await repo.search('Patient', [['identifier', 'RACE-1']])).matches).toHaveLength(1);
  });

  it('conditional update creates when absent and updates the single match', async () => {
    const cond: [string, string][] = [['identifier', `${MRN_CITY}|CU-1`]];
    const first = await repo.conditionalUpdate({ resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'CU-1' }], gender: 'male' }, cond);
    expect(first.status).toBe(201);
    const second = await repo.conditionalUpdate({ resourceType: 'Patient', identifier: [{ system: MRN_CITY, value: 'CU-1' }], gender: 'female' }, cond);
    expect(second.status).toBe(200);
    expect(second.stored.id).toBe(first.stored.id);
    expect(second.stored.versionId).toBe('2');
  });

  it('type history pages with a cursor and honours _since', async () => {
    for (let i = 0; i < 5; i++) await repo.update({ resourceType: 'Location', id: `loc${i}`, name: `L${i}` });
    await repo.update({ resourceType: 'Location', id: 'loc0', name: 'L0 renamed' });
    const seen: string[] = [];
    let page = await repo.history({ type: 'Location' }, { count: 4 });
    seen.push(...page.entries.map((e) => `${e.id}@${e.versionId}`));
    expect(page.next).toBeDefined();
    page = await repo.history({ type: 'Location' }, { count: 4, cursor: page.next });
    seen.push(...page.entries.map((e) => `${e.id}@${e.versionId}`));
    expect(page.next).toBeUndefined();
    expect(seen).toHaveLength(6);
    expect(seen[0]).toBe('loc0@2');
    expect(new Set(seen).size).toBe(6);
    const future = await repo.history({ type: 'Location' }, { count: 10, since: new Date(Date.now() + 60_000).toISOString() });
    expect(future.entries).toHaveLength(0);
  });

  it('stores and finds a resource whose indexed values are longer than a btree entry can hold', async () => {
    // Each of these used to fail the write ("index row requires ... bytes"): a 500 over HTTP, and a retried, never-applied ingest job.
    // Distinct characters: a repeated one compresses below the limit and hides the problem.
    const long = (seed: string): string => `${seed}${Array.from({ length: 20_000 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20_000))).join('')}`;
    const { stored } = await repo.create({ resourceType: 'Patient', name: [{ family: long('王') }], identifier: [{ system: long('urn:s'), value: long('v') }] } as Patient);
    const found = async (params: [string, string][]): Promise<string[]> => (await repo.search('Patient', params)).matches.map((m) => m.id);
    expect(await found([['family', long('王')]])).toEqual([stored.id]);
    expect(await found([['family', long('王').slice(0, 3)]])).toEqual([stored.id]);
    expect(await found([['name:exact', long('王')]])).toEqual([stored.id]);
    expect(await found([['name:exact', long('王').slice(0, -1)]])).toEqual([]);
    expect(await found([['identifier', `${long('urn:s')}|${long('v')}`]])).toEqual([stored.id]);
  });

  it('index rows follow updates: a changed code is found by the new value only', async () => {
    await repo.update(labObservation('ix1', 'p1', '718-7', 10, 'g/dL', '2024-01-01'));
    expect((await repo.search('Observation', [['code', '718-7'], ['_id', 'ix1']])).matches).toHaveLength(1);
    await repo.update(labObservation('ix1', 'p1', '2345-7', 5, 'mmol/L', '2024-01-01'));
    expect((await repo.search('Observation', [['code', '718-7'], ['_id', 'ix1']])).matches).toHaveLength(0);
    expect((await repo.search('Observation', [['code', '2345-7'], ['_id', 'ix1']])).matches).toHaveLength(1);
  });
});
