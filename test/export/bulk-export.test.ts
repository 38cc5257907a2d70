/**
 * Bulk Data $export over HTTP with real tokens, on both drivers: kick-off at the three
 * levels, _type and _since, the manifest and its NDJSON against what the store holds, paging
 * (a page of two), the IG's refusals, ownership of a job, cancel and restart. All synthetic.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import type { Bundle, CapabilityStatement, Group, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { JobFiles } from '../../gateway/export/jobs';
import { agentFor, OFFICE } from '../support/auth';
import { download, exportIds, finished, FHIR, issueText, kickoff, openExportHarness, pathOf, type ExportHarness } from '../support/export';
import { labObservation } from '../support/fixtures';
import { facilityPatient } from '../support/people';
import { DRIVERS } from '../support/stores';

const A = 'city-hospital';
const B = 'county-hospital';
const TOWNSHIP = 'township-clinic';

describe.each(DRIVERS)('bulk $export on %s', (driver) => {
  let h: ExportHarness;
  let a: request.Agent;
  let b: request.Agent;
  let office: request.Agent;
  /** Instant between the first load and the later changes, for _since. */
  let between: string;

  const put = async (agent: request.Agent, r: Resource & { id: string }): Promise<void> => {
    const res = await agent.put(`/fhir/${r.resourceType}/${r.id}`).set('Content-Type', FHIR).send(r);
    expect([r.id, res.status, res.body.issue]).toEqual([r.id, expect.any(Number), undefined]);
  };
  /** Every id of `type` the agent's search returns, following next links. */
  const searchIds = async (agent: request.Agent, type: string): Promise<string[]> => {
    const ids: string[] = [];
    let path: string | undefined = `/fhir/${type}?_count=100`;
    while (path) {
      const page: Bundle = (await agent.get(path).expect(200)).body;
      ids.push(...(page.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource!.id!));
      const next = page.link?.find((l) => l.relation === 'next')?.url;
      path = next ? `${pathOf(next)}${new URL(next).search}` : undefined;
    }
    return ids.sort();
  };

  beforeAll(async () => {
    h = await openExportHarness(driver);
    [a, b, office] = await Promise.all([agentFor(h.app, A), agentFor(h.app, B), agentFor(h.app, OFFICE)]);
    const people = [
      facilityPatient('ex-p1', { name: '孙立新', gender: 'male', birthDate: '1961-04-02' }, A),
      facilityPatient('ex-p2', { name: '周雅琴', gender: 'female', birthDate: '1979-08-19' }, A),
      facilityPatient('ex-p3', { name: '吴国栋', gender: 'male', birthDate: '1990-12-30' }, A),
    ];
    for (const p of people) await put(a, p);
    for (const [i, p] of ['ex-p1', 'ex-p1', 'ex-p1', 'ex-p2', 'ex-p2', 'ex-p3', 'ex-p3'].entries()) {
      await put(a, labObservation(`ex-o${i}`, p, '2345-7', 5 + i / 10, 'mmol/L', `2026-03-0${i + 1}`));
    }
    await put(a, { resourceType: 'Organization', id: 'ex-lab', name: '检验科' } as Resource & { id: string });
    await put(a, { resourceType: 'Practitioner', id: 'ex-doc', name: [{ text: '郑医生' }] } as Resource & { id: string });
    const group: Group & { id: string } = {
      resourceType: 'Group',
      id: 'ex-cohort',
      type: 'person',
      actual: true,
      member: [{ entity: { reference: 'Patient/ex-p1' } }, { entity: { reference: 'Practitioner/ex-doc' } }, { entity: { reference: 'Patient/ex-p3' } }, { entity: { reference: 'Patient/ex-p2' }, inactive: true }],
    };
    await put(a, group);
    await new Promise((r) => setTimeout(r, 20));
    between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await put(a, { ...people[1], gender: 'other' });
    await put(a, labObservation('ex-late', 'ex-p3', '718-7', 131, 'g/L', '2026-04-01'));
    await a.delete('/fhir/Observation/ex-o6').expect(204);
  });
  afterAll(() => h.close());

  it('system export: a manifest whose files hold exactly what search returns, type by type, across pages', async () => {
    const status = await kickoff(office, '/fhir/$export?_type=Patient,Observation,Organization&_outputFormat=application/fhir%2Bndjson');
    expect(status).toMatch(/^\/fhir\/\$export-status\/[0-9a-f-]{36}$/);
    const manifest = await finished(office, status);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toMatch(/\/fhir\/\$export\?_type=Patient,Observation,Organization/);
    expect(Date.parse(manifest.transactionTime)).toBeGreaterThan(Date.parse(between));
    expect(manifest.error).toEqual([]);
    expect(manifest.output.map((o) => o.type)).toEqual(['Patient', 'Observation', 'Organization']);
    for (const f of manifest.output) {
      const { contentType, resources } = await download(office, f.url);
      expect(contentType).toMatch(/^application\/fhir\+ndjson/);
      const ids = resources.map((r) => r.id!).sort();
      expect(resources.every((r) => r.resourceType === f.type)).toBe(true);
      expect(new Set(ids).size).toBe(ids.length); // pages neither overlap nor repeat
      expect(ids).toEqual(await searchIds(office, f.type));
      expect(f.count).toBe(ids.length);
    }
    expect(manifest.output.find((o) => o.type === 'Observation')!.count).toBe(7); // 7 written, one deleted, one added
  });

  it('exports current versions only: the update is there, the deletion is not', async () => {
    const ids = await exportIds(office, '/fhir/$export?_type=Observation');
    expect(ids.Observation).toContain('ex-late');
    expect(ids.Observation).not.toContain('ex-o6');
    const manifest = await finished(office, await kickoff(office, '/fhir/$export?_type=Patient'));
    const { resources } = await download(office, manifest.output[0].url);
    expect(resources.find((r) => r.id === 'ex-p2')).toMatchObject({ gender: 'other', meta: { versionId: '2' } });
  });

  it('_since keeps what changed after the instant', async () => {
    const ids = await exportIds(office, `/fhir/$export?_type=Patient,Observation&_since=${encodeURIComponent(between)}`);
    expect(ids.Observation).toEqual(['ex-late']);
    // ex-p2 changed; the golden record that follows it may be rewritten too, nothing else.
    expect(ids.Patient).toContain('ex-p2');
    expect(ids.Patient).not.toContain('ex-p1');
    expect(ids.Patient).not.toContain('ex-p3');
  });

  it('Patient export: the compartments of every patient, not the resources outside them', async () => {
    const ids = await exportIds(office, '/fhir/Patient/$export?_type=Patient,Observation,Organization');
    expect(ids.Observation).toEqual(['ex-late', 'ex-o0', 'ex-o1', 'ex-o2', 'ex-o3', 'ex-o4', 'ex-o5']);
    expect(ids.Patient).toEqual(expect.arrayContaining(['ex-p1', 'ex-p2', 'ex-p3']));
    expect(ids.Organization).toBeUndefined();
    const all = await exportIds(office, '/fhir/Patient/$export');
    expect(Object.keys(all).sort()).toEqual(['Group', 'Observation', 'Patient']); // a Group names its members: in their compartment
  });

  it('Group export: only the active Patient members, and the member it cannot export in the error file', async () => {
    const manifest = await finished(office, await kickoff(office, '/fhir/Group/ex-cohort/$export?_type=Patient,Observation&_since=2000-01-01'));
    const files = Object.fromEntries(await Promise.all(manifest.output.map(async (f) => [f.type, (await download(office, f.url)).resources.map((r) => r.id).sort()] as const)));
    expect(files.Observation).toEqual(['ex-late', 'ex-o0', 'ex-o1', 'ex-o2', 'ex-o5']);
    // The two members and their golden records (Patient.link puts those in the compartment), not ex-p2's.
    const golden = async (id: string): Promise<string> => (await h.store.mpi.person(h.store.repo.executor, id))!.goldenId;
    expect(files.Patient).toEqual(['ex-p1', 'ex-p3', await golden('ex-p1'), await golden('ex-p3')].sort());
    expect(manifest.error).toEqual([{ type: 'OperationOutcome', url: expect.stringMatching(/OperationOutcome\.ndjson$/), count: 1 }]);
    const { resources } = await download(office, manifest.error[0].url);
    expect((resources[0] as OperationOutcome).issue[0]).toMatchObject({ severity: 'warning', expression: ['Group.member[1].entity'] });
    await office.get('/fhir/Group/no-such-group/$export').set('Prefer', 'respond-async').expect(404);
  });

  it('the export is limited to the types the token may read and search', async () => {
    const township = await agentFor(h.app, TOWNSHIP);
    const ids = await exportIds(township, '/fhir/$export');
    expect(Object.keys(ids).sort()).toEqual(['Observation', 'Patient']);
    const refused = await township.get('/fhir/$export?_type=Patient,Organization').set('Prefer', 'respond-async').expect(403);
    expect(issueText(refused.body)).toMatch(/system\/Organization\.r/);
    // A facility may not export AuditEvents; the office may.
    await a.get('/fhir/$export?_type=AuditEvent').set('Prefer', 'respond-async').expect(403);
    await office.get('/fhir/$export?_type=AuditEvent').set('Prefer', 'respond-async').expect(202);
  });

  it('refuses what the IG refuses, as OperationOutcomes', async () => {
    const noPrefer = await office.get('/fhir/$export').expect(400);
    expect((noPrefer.body as OperationOutcome).resourceType).toBe('OperationOutcome');
    expect(issueText(noPrefer.body)).toMatch(/respond-async/);
    const csv = await office.get('/fhir/$export?_outputFormat=text/csv').set('Prefer', 'respond-async').expect(400);
    expect((csv.body as OperationOutcome).issue[0].expression).toEqual(['_outputFormat']);
    for (const format of ['ndjson', 'application/ndjson', 'application/fhir+ndjson']) {
      await office.get(`/fhir/$export?_type=Organization&_outputFormat=${format}`).set('Prefer', 'respond-async').expect(202);
    }
    await office.get('/fhir/$export?_type=NoSuchType').set('Prefer', 'respond-async').expect(400);
    await office.get('/fhir/$export?_since=yesterday').set('Prefer', 'respond-async').expect(400);
    await office.get('/fhir/$export?_type=Organization&_typeFilter=x').set('Prefer', 'respond-async').expect(202);
    const strict = await office.get('/fhir/$export?_type=Organization&_typeFilter=x').set('Prefer', 'respond-async, handling=strict').expect(400);
    expect(issueText(strict.body)).toMatch(/_typeFilter/);
    await request(h.app).get('/fhir/$export').set('Prefer', 'respond-async').expect(401);
  });

  it('breaking the glass is refused on every kick-off, before anything is read', async () => {
    for (const path of ['/fhir/$export', '/fhir/Patient/$export', '/fhir/Group/ex-cohort/$export']) {
      const res = await a.get(path).set('Prefer', 'respond-async').set('X-Break-Glass', 'emergency').expect(403);
      expect([path, (res.body as OperationOutcome).issue[0].expression]).toEqual([path, ['X-Break-Glass']]);
    }
  });

  it('only the client that started an export may poll, download or cancel it', async () => {
    const status = await kickoff(a, '/fhir/$export?_type=Observation');
    const manifest = await finished(a, status);
    await b.get(status).expect(404);
    await b.get(pathOf(manifest.output[0].url)).expect(404);
    await b.delete(status).expect(404);
    await request(h.app).get(status).expect(401);
    await request(h.app).get(pathOf(manifest.output[0].url)).expect(401);
    await a.get(`${status}/../job.json`).expect(404);
    await a.get(`${status}/Patient.ndjson`).expect(404);
    await a.get('/fhir/$export-status/not-a-job').expect(404);
    await a.get(pathOf(manifest.output[0].url)).expect(200);
  });

  it('cancel stops the job and removes its files; the status is gone', async () => {
    // Every type a page of two at a time: still running when the DELETE arrives.
    const status = await kickoff(office, '/fhir/$export');
    const id = status.split('/').pop()!;
    const running = await office.get(status);
    expect(running.status).toBe(202);
    expect(running.headers['x-progress']).toMatch(/of \d+ types/);
    await office.delete(status).expect(202);
    await office.get(status).expect(404);
    expect(existsSync(join(h.dir, id))).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(join(h.dir, id))).toBe(false); // stopped, not still writing somewhere
    const done = await finished(office, await kickoff(office, '/fhir/$export?_type=Organization'));
    const doneId = pathOf(done.output[0].url).split('/')[3];
    await office.delete(`/fhir/$export-status/${doneId}`).expect(202);
    await office.get(pathOf(done.output[0].url)).expect(404);
    expect(readdirSync(h.dir)).not.toContain(doneId);
  });

  it('a job left running by a stopped gateway is failed on start, with an OperationOutcome', async () => {
    const files = new JobFiles(h.dir);
    const id = '00000000-0000-4000-8000-000000000001';
    await files.create({ id, owner: 'city-hospital-his', level: 'system', status: 'in-progress', request: 'x', transactionTime: new Date().toISOString(), types: ['Patient'], typesDone: 0, exported: 0, output: [], error: [] });
    expect(await h.exports.recover()).toBe(1);
    const res = await a.get(`/fhir/$export-status/${id}`).expect(500);
    expect((res.body as OperationOutcome).issue[0]).toMatchObject({ code: 'exception', diagnostics: expect.stringMatching(/stopped while this export was running/) });
  });

  it('the CapabilityStatement lists the export operations', async () => {
    const cs = (await request(h.app).get('/fhir/metadata').expect(200)).body as CapabilityStatement;
    const rest = cs.rest![0];
    expect(rest.operation).toContainEqual(expect.objectContaining({ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }));
    expect(rest.resource!.find((r) => r.type === 'Patient')!.operation).toContainEqual(expect.objectContaining({ definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export' }));
    expect(rest.resource!.find((r) => r.type === 'Group')!.operation).toContainEqual(expect.objectContaining({ definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export' }));
  });
});
