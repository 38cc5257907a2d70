import { once } from 'node:events';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import request from 'supertest';
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { adt, oru, syntheticPatient } from '../../fixtures/synthetic/hl7';
import { resourceId } from '../../mappers/ids';
import { agentFor, OFFICE, tokenFor } from '../support/auth';
import { openImportHarness, type ImportHarness } from '../support/imports';
import { DRIVERS } from '../support/stores';

const FOLLOW_UP_HEADER = 'sfjlh,jmbh,xm,xb,csrq,lxdh,sfrq,sfys,jblx,kfxt,ssy,szy,tz';

/** `n` follow-up rows of residents C10000000.., each with glucose, blood pressure and weight. */
function followUps(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return `SF9${String(i).padStart(7, '0')},C1${String(i % 50).padStart(7, '0')},测试${i % 50},${(i % 2) + 1},1960-01-0${(i % 9) + 1},1700${String(i).padStart(7, '0')},2025-10-${String((i % 28) + 1).padStart(2, '0')},孙丽,糖尿病,${(5 + (i % 30) / 10).toFixed(1)},${120 + (i % 20)},${80 + (i % 10)},${(60 + (i % 15)).toFixed(1)}`;
  });
}

const errorsOf = (text: string): { line: number; raw: string; outcome: { issue: { diagnostics?: string }[] } }[] =>
  text
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l));

describe.each(DRIVERS)('batch imports on %s with Redis', (driver) => {
  let h: ImportHarness;
  let centre: request.Agent;
  let city: request.Agent;
  let county: request.Agent;
  let office: request.Agent;
  beforeAll(async () => {
    h = await openImportHarness(driver);
    [centre, city, county, office] = await Promise.all(['community-centre-a', 'city-hospital', 'county-hospital', OFFICE].map((f) => agentFor(h.app, f)));
  });
  afterAll(() => h.close());

  const upload = (agent: request.Agent | ReturnType<typeof request>, query: string, body: string | Buffer) => agent.post(`/imports?${query}`).set('Content-Type', 'application/octet-stream').send(body);

  it('cancels an import no worker has started on, and keeps it cancelled', async () => {
    const res = await upload(centre, 'format=csv&source=community-centre-a', [FOLLOW_UP_HEADER, ...followUps(3, 900)].join('\n')).expect(202);
    expect(res.body.state).toBe('reading');
    const cancelled = await centre.delete(`/imports/${res.body.id}`).expect(200);
    expect(cancelled.body.state).toBe('cancelled');
    const again = await centre.delete(`/imports/${res.body.id}`).expect(409);
    expect(again.body.issue[0].diagnostics).toMatch(/already cancelled/);
  });

  it('refuses what it must: no token, another facility\'s source, a path outside the import folder, an unknown format', async () => {
    const csv = [FOLLOW_UP_HEADER, ...followUps(1)].join('\n');
    await upload(request(h.app), 'format=csv&source=community-centre-a', csv).expect(401);
    const foreign = await upload(county, 'format=csv&source=community-centre-a', csv).expect(403);
    expect(foreign.body.issue[0].diagnostics).toMatch(/another facility/);
    const escape = await centre.post('/imports').send({ format: 'csv', source: 'community-centre-a', path: '../../etc/passwd' });
    expect([403, 404]).toContain(escape.status);
    expect(escape.body.resourceType).toBe('OperationOutcome');
    const format = await upload(centre, 'format=xlsx&source=community-centre-a', csv).expect(400);
    expect(format.body.issue[0].diagnostics).toMatch(/format/);
    const empty = await upload(centre, 'format=csv&source=community-centre-a', '').expect(400);
    expect(empty.body.issue[0].diagnostics).toMatch(/empty/);
  });

  describe('with workers running', () => {
    beforeAll(() => {
      h.startWorker({ chunkSize: 4, maxBacklog: 2 });
    });

    it('imports a CSV in chunks: good rows stored, a bad row reported by its line with the raw row, the rest untouched', async () => {
      const rows = followUps(11);
      // Line 7 of the file (row 6): a weight that is not a number.
      rows[5] = rows[5].replace(/,[\d.]+$/, ',六十');
      const res = await upload(centre, 'format=csv&source=community-centre-a', [FOLLOW_UP_HEADER, ...rows].join('\r\n')).expect(202);
      expect(res.headers.location).toBe(`/imports/${res.body.id}`);
      const job = await h.waitFor(res.body.id);
      expect(job.state).toBe('done');
      const status = await centre.get(`/imports/${job.id}`).expect(200);
      expect(status.body).toMatchObject({ state: 'done', format: 'csv', source: 'community-centre-a', read: 11, total: 11, done: 10, failed: 1 });
      const errors = errorsOf((await centre.get(`/imports/${job.id}/errors`).expect(200).expect('Content-Type', /ndjson/)).text);
      expect(errors).toHaveLength(1);
      expect(errors[0].line).toBe(7);
      expect(errors[0].raw).toContain(rows[5]);
      expect(errors[0].outcome.issue[0].diagnostics).toMatch(/line 7, column tz/);
      // Each good row: glucose, blood pressure and weight.
      const stored = await h.store.db.query<{ n: string }>(
        `SELECT count(*) AS n FROM resource WHERE type = 'Observation' AND content->'meta'->>'source' ~ '#SF900000(0[0-9]|10)$'`,
      );
      expect(Number(stored[0].n)).toBe(30);
      // Another facility does not see the import.
      await county.get(`/imports/${job.id}`).expect(404);
    });

    it('running the same file again changes nothing', async () => {
      const body = [FOLLOW_UP_HEADER, ...followUps(6, 100)].join('\n');
      const first = await upload(centre, 'format=csv&source=community-centre-a', body).expect(202);
      await h.waitFor(first.body.id);
      const before = await h.store.db.query<{ n: string; v: string }>(`SELECT count(*) AS n, sum(version) AS v FROM resource`);
      const again = await upload(centre, 'format=csv&source=community-centre-a', body).expect(200);
      expect(again.body).toMatchObject({ id: first.body.id, state: 'done', done: 6, failed: 0 });
      const after = await h.store.db.query<{ n: string; v: string }>(`SELECT count(*) AS n, sum(version) AS v FROM resource`);
      expect(after).toEqual(before);
    });

    it('imports a GB18030 HL7 batch file (FHS/BHS wrapped) from the import folder; a message of another sender fails alone', async () => {
      const p = syntheticPatient(4101);
      const gb = (m: string) => m.replace('UNICODE UTF-8', 'GB 18030-2000');
      const stranger = adt('A04', syntheticPatient(4102), 'IMP-3').replace('|CITYHOSP|', '|COUNTYHOSP|');
      const lines = ['FHS|^~\\&|HIS|CITYHOSP', 'BHS|^~\\&|HIS|CITYHOSP', gb(adt('A04', p, 'IMP-1')), gb(oru(p, 'IMP-2', 'RIMP2', 3, 1)), gb(stranger), 'BTS|3', 'FTS|1'];
      const segments = lines.join('\r').split('\r');
      writeFileSync(join(h.importDir, 'batch.hl7'), iconv.encode(segments.join('\r\n') + '\r\n', 'gb18030'));
      const res = await city.post('/imports').send({ format: 'hl7v2', source: 'city-hospital', path: 'batch.hl7' }).expect(202);
      const job = await h.waitFor(res.body.id);
      const status = await city.get(`/imports/${job.id}`).expect(200);
      expect(status.body).toMatchObject({ state: 'done', read: 3, done: 2, failed: 1 });
      const [error] = errorsOf((await city.get(`/imports/${job.id}/errors`).expect(200)).text);
      // The stranger's MSH is the 9th line: FHS, BHS, 4 ADT segments, 5 ORU... counted in the file.
      expect(error.line).toBe(segments.findIndex((s) => s.includes('IMP-3')) + 1);
      expect(error.outcome.issue[0].diagnostics).toMatch(/MSH-4/);
      const patient = (await city.get(`/fhir/Patient/${resourceId('city-hospital', 'patient', p.mrn)}`).expect(200)).body as Patient;
      expect(patient.name?.[0].family).toBe(p.family);
      const results = (await city.get(`/fhir/Observation?patient=${patient.id}`).expect(200)).body as Bundle<Observation>;
      expect(results.entry).toHaveLength(3);
    });

    it('imports FHIR NDJSON as the office: each line a resource under its own id; a line without id or not JSON fails alone', async () => {
      const lines = [
        JSON.stringify({ resourceType: 'Organization', id: 'nd-org-1', name: '导入测试机构' }),
        JSON.stringify({ resourceType: 'Patient', id: 'nd-pat-1', name: [{ family: '导入', given: ['甲'] }], gender: 'female' }),
        '',
        JSON.stringify({ resourceType: 'Patient', name: [{ family: '无号' }] }),
        '{"resourceType": "Patient", "id": "nd-pat-2", ',
        JSON.stringify({ resourceType: 'Observation', id: 'nd-obs-1', status: 'final', code: { text: '体温' }, subject: { reference: 'Patient/nd-pat-1' }, valueQuantity: { value: 36.6, unit: 'Cel' } }),
        JSON.stringify({ resourceType: 'Patient', id: 'nd-pat-3', gender: 'unknown-gender' }),
      ];
      const res = await upload(office, 'format=ndjson', lines.join('\n')).expect(202);
      const job = await h.waitFor(res.body.id);
      const status = await office.get(`/imports/${job.id}`).expect(200);
      expect(status.body).toMatchObject({ state: 'done', read: 6, done: 3, failed: 3 });
      const errors = errorsOf((await office.get(`/imports/${job.id}/errors`).expect(200)).text);
      expect(errors.map((e) => e.line)).toEqual([4, 5, 7]);
      expect(errors[0].outcome.issue[0].diagnostics).toMatch(/needs its id/);
      expect(errors[1].outcome.issue[0].diagnostics).toMatch(/not a JSON value/);
      expect(errors[2].outcome.issue[0].diagnostics).toMatch(/gender/);
      const obs = (await office.get('/fhir/Observation/nd-obs-1').expect(200)).body as Observation;
      expect(obs.subject?.reference).toBe('Patient/nd-pat-1');
      // A facility needs its own records: it cannot slip a source's name into an NDJSON import.
      await upload(centre, 'format=ndjson&source=community-centre-a', lines[0]).expect(400);
    });

    it('stops at a CSV header it cannot read, saying where', async () => {
      const res = await upload(centre, 'format=csv&source=community-centre-a', 'sfjlh,jmbh,unknowncolumn\nSF1,C1,x\n').expect(202);
      const job = await h.waitFor(res.body.id);
      expect(job.state).toBe('failed');
      expect(job.outcome?.issue[0].diagnostics).toMatch(/line 1, column unknowncolumn/);
    });
  });
});

describe('import uploads past MAX_IMPORT_BYTES', () => {
  let h: ImportHarness;
  let centre: request.Agent;
  let base: string;
  let server: Server;
  let token: string;
  beforeAll(async () => {
    h = await openImportHarness('postgres', { maxUploadBytes: 1000 });
    centre = await agentFor(h.app, 'community-centre-a');
    token = await tokenFor(h.app, 'community-centre-a');
    server = h.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await h.close();
  });
  const kept = (): string[] => (existsSync(h.uploadDir) ? readdirSync(h.uploadDir) : []);

  it('are refused with 413 by their Content-Length, before a byte is stored', async () => {
    const res = await centre.post('/imports?format=csv&source=community-centre-a').set('Content-Type', 'text/csv').send([FOLLOW_UP_HEADER, ...followUps(20)].join('\n')).expect(413);
    expect(res.body.issue[0]).toMatchObject({ code: 'too-costly', diagnostics: expect.stringContaining('MAX_IMPORT_BYTES') });
    expect(kept()).toEqual([]);
  });

  it('are cut off at the limit when sent chunked, leaving nothing half-written', async () => {
    const rows = [FOLLOW_UP_HEADER, ...followUps(20)].map((l) => `${l}\n`);
    const body = new ReadableStream({
      pull(controller) {
        const row = rows.shift();
        if (row) controller.enqueue(new TextEncoder().encode(row));
        else controller.close();
      },
    });
    const res = await fetch(`${base}/imports?format=csv&source=community-centre-a`, { method: 'POST', headers: { 'content-type': 'text/csv', authorization: `Bearer ${token}` }, body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(kept()).toEqual([]);
  });

  it('within the limit are taken', async () => {
    await centre.post('/imports?format=csv&source=community-centre-a').set('Content-Type', 'text/csv').send([FOLLOW_UP_HEADER, ...followUps(2)].join('\n')).expect(202);
  });
});
