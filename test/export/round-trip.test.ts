import type { Patient, Resource } from '@medplum/fhirtypes';
import type request from 'supertest';
import { isGolden } from '../../mpi/golden';
import { agentFor, OFFICE } from '../support/auth';
import { download, finished, kickoff, openExportHarness, type ExportHarness } from '../support/export';
import { openImportHarness, type ImportHarness } from '../support/imports';

/** Every current resource of a store, as `Type/id -> content` without the store's own meta. */
async function everything(h: { store: { db: ExportHarness['store']['db'] } }): Promise<Map<string, unknown>> {
  const rows = await h.store.db.query<{ type: string; id: string; content: string }>(`SELECT type, id, content::text AS content FROM resource WHERE NOT deleted ORDER BY type, id`);
  return new Map(
    rows.map((r) => {
      const { meta, ...rest } = JSON.parse(r.content) as Resource;
      const { versionId: _v, lastUpdated: _l, ...kept } = meta ?? {};
      return [`${r.type}/${r.id}`, { ...rest, meta: kept }];
    }),
  );
}

/**
 * `$export` from one gateway, imported as FHIR NDJSON into an empty one: the same record. The
 * patient index's golden Patients are the one exception: derived data, which the receiving
 * index rebuilds from the registrations, and refuses to take as written.
 */
describe('$export round trip (PostgreSQL to an empty PGlite gateway)', () => {
  let from: ExportHarness;
  let to: ImportHarness;
  let source: request.Agent;
  let target: request.Agent;
  beforeAll(async () => {
    [from, to] = await Promise.all([openExportHarness('postgres'), openImportHarness('pglite')]);
    to.startWorker();
    [source, target] = await Promise.all([agentFor(from.app, OFFICE), agentFor(to.app, OFFICE)]);
    // Written as two facilities write them: author tags, a sensitive label, references across types.
    const city = from.store.repo.withAccess({ facility: 'city-hospital' });
    const centre = from.store.repo.withAccess({ facility: 'community-centre-a' });
    await city.update({ resourceType: 'Organization', id: 'city-hospital', name: '市第一人民医院' });
    for (let i = 0; i < 5; i++) {
      await city.update({ resourceType: 'Patient', id: `rt-p${i}`, identifier: [{ system: 'urn:oid:2.16.156.10011.1.11.1', value: `RT${i}` }], name: [{ family: '往返', given: [`${i}号`] }], gender: i % 2 ? 'male' : 'female', birthDate: `197${i}-01-0${i + 1}` });
      await city.update({ resourceType: 'Encounter', id: `rt-e${i}`, status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/rt-p${i}` } });
      await centre.update({ resourceType: 'Observation', id: `rt-o${i}`, status: 'final', code: { text: '血压' }, subject: { reference: `Patient/rt-p${i}` }, encounter: { reference: `Encounter/rt-e${i}` }, valueString: `${120 + i}/80` });
    }
    await city.update({ resourceType: 'Condition', id: 'rt-c1', subject: { reference: 'Patient/rt-p1' }, code: { text: '抑郁发作' }, meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY' }] } });
  });
  afterAll(async () => {
    await from.close();
    await to.close();
  });

  it('exports everything and imports it into an empty gateway: the same resources, the same content', async () => {
    const manifest = await finished(source, await kickoff(source, '/fhir/$export'));
    const goldens = new Set<string>();
    for (const file of manifest.output) {
      const { resources } = await download(source, file.url);
      for (const r of resources) if (r.resourceType === 'Patient' && isGolden(r as Patient)) goldens.add(`Patient/${r.id}`);
      const body = resources.map((r) => JSON.stringify(r)).join('\n');
      const res = await target.post('/imports?format=ndjson').set('Content-Type', 'application/fhir+ndjson').send(body).expect(202);
      const job = await to.waitFor(res.body.id);
      const status = (await target.get(`/imports/${job.id}`).expect(200)).body;
      const expectedGoldens = resources.filter((r) => goldens.has(`Patient/${r.id}`)).length;
      expect([file.type, status.state, status.done, status.failed]).toEqual([file.type, 'done', file.count - expectedGoldens, expectedGoldens]);
    }
    // The five registrations: five persons in the source's index.
    expect(goldens.size).toBe(5);

    const exported = await everything(from);
    const imported = await everything(to);
    const registrations = (m: Map<string, unknown>) => new Map([...m].filter(([k]) => !goldens.has(k) && !(k.startsWith('Patient/') && isGolden(m.get(k) as Patient))));
    expect(registrations(imported)).toEqual(registrations(exported));
    expect(registrations(exported).size).toBe(17);
    // The receiving index made its own persons of the imported registrations.
    const persons = await to.store.db.query<{ n: number }>(`SELECT count(DISTINCT golden_id)::int AS n FROM mpi_link`);
    expect(persons[0].n).toBe(5);
  });
});
