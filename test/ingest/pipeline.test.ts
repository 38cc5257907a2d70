import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import iconv from 'iconv-lite';
import type request from 'supertest';
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { adt, oru, type Hl7Patient } from '../../fixtures/synthetic/hl7';
import { resourceId } from '../../mappers/ids';
import { messageLog } from '../../store/messages';
import { applyMessage } from '../../workers/ingest';
import { demoSources, openIngestHarness, silent, type IngestHarness } from '../support/ingest';
import { DRIVERS } from '../support/stores';
import { agentFor, facilityAgents, OFFICE } from '../support/auth';

const HL7 = 'application/hl7-v2';
const wang: Hl7Patient = { mrn: '10000101', family: '王', given: '小明', birth: '19580312', sex: 'M', phone: '17000000101' };
const li: Hl7Patient = { mrn: '10000102', family: '李', given: '秀英', birth: '19620725', sex: 'F', phone: '17000000102' };
const patientId = (mrn: string): string => resourceId('city-hospital', 'patient', mrn);

/** MSA-1 and MSA-2 of an ACK. */
function msa(ack: string): [string, string] {
  const seg = ack.split('\r').find((s) => s.startsWith('MSA|'))!.split('|');
  return [seg[1], seg[2]];
}

describe.each(DRIVERS)('ingest pipeline on %s with Redis', (driver) => {
  let h: IngestHarness;
  let city: request.Agent;
  beforeAll(async () => {
    h = await openIngestHarness(driver);
    h.startWorker();
    city = await agentFor(h.app, 'city-hospital');
  });
  afterAll(() => h.close());
  // The city hospital sends every message here, and reads what it sent.
  const api = () => city;

  async function post(message: string): Promise<{ id: string; ack: string; status: number }> {
    const res = await api().post('/ingest/hl7v2').set('Content-Type', HL7).send(message);
    return { id: res.headers['x-message-id'], ack: res.text, status: res.status };
  }

  it('acknowledges an ORU^R01 with AA after storing it, then makes every result searchable', async () => {
    const { id, ack, status } = await post(oru(wang, 'MSG-ORU-1', 'R0001', 8, 1));
    expect(status).toBe(200);
    expect(msa(ack)).toEqual(['AA', 'MSG-ORU-1']);
    expect(ack.startsWith('MSH|^~\\&|FHIRGW|CONSORTIUM|HIS|CITYHOSP|')).toBe(true);
    // Stored before the ACK: the log has it whatever the worker has done so far.
    expect((await messageLog.get(h.store.db, id))?.source).toBe('city-hospital');

    const [done] = await h.waitForFinished([id]);
    expect(done.state).toBe('done');
    // Patient (from PID, created because absent), DiagnosticReport and 8 Observations.
    expect(done.resources).toHaveLength(10);
    const search = await api().get(`/fhir/Observation?patient=${patientId(wang.mrn)}&_count=50`).expect(200);
    const observations = (search.body as Bundle).entry!.map((e) => e.resource as Observation);
    expect(observations).toHaveLength(8);
    expect(observations.every((o) => o.meta?.source === 'urn:consortium:source:city-hospital#MSG-ORU-1')).toBe(true);
    const status2 = await api().get(`/ingest/messages/${id}`).expect(200);
    expect(status2.body).toMatchObject({ id, source: 'city-hospital', kind: 'ORU^R01', state: 'done', controlId: 'MSG-ORU-1' });
  });

  it('resending the same message changes nothing: same ids, no new versions', async () => {
    const at = new Date('2026-11-20T02:00:00Z');
    const first = await post(oru(li, 'MSG-ORU-2', 'R0002', 8, 2, at));
    const [a] = await h.waitForFinished([first.id]);
    const again = await post(oru(li, 'MSG-ORU-2', 'R0002', 8, 2, at));
    expect(again.id).not.toBe(first.id); // a second receipt, logged as such
    const [b] = await h.waitForFinished([again.id]);
    expect(b.state).toBe('done');
    // The same report and results, at version 1; the Patient copy is left out now it exists.
    expect([...b.resources!].sort()).toEqual(a.resources!.filter((r) => !r.startsWith('Patient/')).sort());
    expect(b.resources!.every((r) => r.endsWith('/_history/1'))).toBe(true);
    const all = await api().get(`/fhir/Observation?patient=${patientId(li.mrn)}&_summary=count`).expect(200);
    expect((all.body as Bundle).total).toBe(8);
  });

  it('an update of the same record makes a new version', async () => {
    const p: Hl7Patient = { ...wang, mrn: '10000901' };
    const a = await post(adt('A04', p, 'MSG-A04-901'));
    await h.waitForFinished([a.id]);
    const b = await post(adt('A08', { ...p, phone: '17000000999' }, 'MSG-A08-901'));
    const [done] = await h.waitForFinished([b.id]);
    expect(done.state).toBe('done');
    const read = await api().get(`/fhir/Patient/${patientId(p.mrn)}`).expect(200);
    expect(read.body.meta.versionId).toBe('2');
    expect(JSON.stringify((read.body as Patient).telecom)).toContain('17000000999');
  });

  it('a result before the registration creates the Patient, and the later registration is not overwritten by results', async () => {
    const p: Hl7Patient = { mrn: '10000902', family: '陈', given: '建国', birth: '19711109', sex: 'M', phone: '17000000103' };
    const r1 = await post(oru({ ...p, phone: undefined }, 'MSG-ORU-902a', 'R0902a'));
    await h.waitForFinished([r1.id]);
    const stub = await api().get(`/fhir/Patient/${patientId(p.mrn)}`).expect(200);
    expect((stub.body as Patient).telecom).toBeUndefined();

    const reg = await post(adt('A04', p, 'MSG-A04-902'));
    await h.waitForFinished([reg.id]);
    const r2 = await post(oru({ ...p, phone: undefined }, 'MSG-ORU-902b', 'R0902b'));
    await h.waitForFinished([r2.id]);
    const after = await api().get(`/fhir/Patient/${patientId(p.mrn)}`).expect(200);
    expect(JSON.stringify((after.body as Patient).telecom)).toContain('17000000103');
    expect(after.body.meta.versionId).toBe('2'); // stub, then registration; the second result left it alone
  });

  it('applies one patient\'s messages in arrival order even when the later job runs first', async () => {
    const p: Hl7Patient = { ...li, mrn: '10000903' };
    // Received with no worker involved: receipt only.
    const first = await h.ingest.receiveHl7(Buffer.from(adt('A04', { ...p, phone: '17000000001' }, 'MSG-903-1')));
    const second = await h.ingest.receiveHl7(Buffer.from(adt('A08', { ...p, phone: '17000000002' }, 'MSG-903-2')));
    // The second message's job runs first: it must apply the first before itself. Its job has
    // the shape of one queued before jobs carried the patient key; the workers of the other
    // tests run the jobs receipt queues now.
    await applyMessage({ repo: h.store.repo, sources: demoSources(), log: silent }, { messageId: second.messageId! });
    const [m1, m2] = await h.waitForFinished([first.messageId!, second.messageId!]);
    expect([m1.state, m2.state]).toEqual(['done', 'done']);
    const read = await api().get(`/fhir/Patient/${patientId(p.mrn)}/_history`).expect(200);
    const versions = (read.body as Bundle).entry!.map((e) => JSON.stringify((e.resource as Patient).telecom));
    // Newest first: version 2 has the second phone, version 1 the first.
    expect(versions[0]).toContain('17000000002');
    expect(versions[1]).toContain('17000000001');
  });

  it('a poison message is refused once with AE naming the field, kept with its reason, and blocks nothing', async () => {
    const bad = oru(wang, 'MSG-BAD-1', 'R0003').replace(/^(OBX\|2\|NM\|[^|]*\|\|)[^|]*/m, '$1abc');
    const res = await post(bad);
    expect(res.status).toBe(422);
    expect(msa(res.ack)).toEqual(['AE', 'MSG-BAD-1']);
    const err = res.ack.split('\r').find((s) => s.startsWith('ERR|'))!.split('|');
    expect(err[2]).toBe('OBX^2^5^1'); // ERR-2: segment OBX, its 2nd occurrence, field 5
    const kept = await api().get(`/ingest/messages/${res.id}`).expect(200);
    expect(kept.body.state).toBe('failed');
    expect(kept.body.outcome.issue[0].expression).toEqual(['OBX[2]-5']);

    const good = await post(oru(wang, 'MSG-ORU-after-bad', 'R0004'));
    const [done] = await h.waitForFinished([good.id]);
    expect(done.state).toBe('done');
  });

  it('refuses with AR a message from an unregistered sender, storing nothing', async () => {
    const res = await post(oru(wang, 'MSG-AR-1', 'R0005').replace('|CITYHOSP|', '|NOSUCHHOSP|'));
    expect(res.status).toBe(400);
    expect(msa(res.ack)).toEqual(['AR', 'MSG-AR-1']);
    expect(res.ack).toContain('ERR||MSH^1^4^1|204^');
    expect(res.id).toBeUndefined();
  });

  it('replays a finished message: mapped again from what was received, same resources', async () => {
    const { id } = await post(oru(wang, 'MSG-ORU-replay', 'R0006'));
    const [done] = await h.waitForFinished([id]);
    const replayed = await api().post(`/ingest/messages/${id}/$replay`).expect(202);
    expect(replayed.body.state).toBe('received');
    const [again] = await h.waitForFinished([id]);
    expect(again.state).toBe('done');
    expect([...again.resources!].sort()).toEqual([...done.resources!].sort());
  });

  it('answers 404 for an unknown message, AR for an empty HL7 body, and an OperationOutcome for a body that is not HL7', async () => {
    await api().get('/ingest/messages/00000000-0000-4000-8000-000000000000').expect(404);
    await api().get('/ingest/messages/not-a-uuid').expect(404);
    // An interface engine reads ACKs, not OperationOutcomes: an empty message is refused in its terms.
    for (const type of [HL7, 'text/plain; charset=utf-8']) {
      const empty = await api().post('/ingest/hl7v2').set('Content-Type', type).send('').expect(400);
      expect(msa(empty.text)[0]).toBe('AR');
      expect(empty.text).toMatch(/\rERR\|\|MSH\^1\|/);
    }
    const xml = await api().post('/ingest/hl7v2').set('Content-Type', 'application/xml').send('<x/>').expect(415);
    expect(xml.body.resourceType).toBe('OperationOutcome');
  });

  it('reports per-source quality: messages by state, failures by reason', async () => {
    const res = await api().get('/ingest/quality').expect(200);
    const city = (res.body.sources as { source: string; done: number; failed: number; failuresByReason: Record<string, number> }[]).find((s) => s.source === 'city-hospital')!;
    expect(city.done).toBeGreaterThanOrEqual(8);
    expect(city.failed).toBe(1);
    expect(city.failuresByReason).toEqual({ 'value at OBX[2]-5': 1 });
  });

  it('answers a NUL byte with AE naming its field, not a 500 from the store, and AR when it is in MSH', async () => {
    const bad = await post(oru(wang, 'MSG-NUL-1', 'R0007').replace(/^(OBX\|3\|NM\|[^|]*\|\|)/m, '$1\u0000'));
    expect(bad.status).toBe(422);
    expect(msa(bad.ack)).toEqual(['AE', 'MSG-NUL-1']);
    expect(bad.ack).toContain('ERR||OBX^3^5^1|');
    expect((await api().get(`/ingest/messages/${bad.id}`).expect(200)).body.outcome.issue[0].expression).toEqual(['OBX[3]-5']);
    // In a segment id, the error quoting it must not carry the NUL into the store either.
    expect((await post(oru(wang, 'MSG-NUL-2', 'R0008').replace('\rOBX|1|', '\rOBX\u0000|1|'))).status).toBe(422);
    const header = await post(oru(wang, 'MSG-NUL-3', 'R0009').replace('|MSG-NUL-3|', '|MSG\u0000NUL-3|'));
    expect(header.status).toBe(400);
    expect(msa(header.ack)[0]).toBe('AR');
  });
});

describe('demo and broken fixtures through HTTP receipt (PostgreSQL, Redis)', () => {
  const FIXTURES = resolve(__dirname, '../../fixtures/messages');
  let h: IngestHarness;
  let as: Record<string, request.Agent>;
  beforeAll(async () => {
    h = await openIngestHarness('postgres');
    h.startWorker();
    as = await facilityAgents(h.app, ['city-hospital', 'county-hospital', 'community-centre-a', OFFICE]);
  });
  afterAll(() => h.close());

  it('every demo record is acknowledged and applied', async () => {
    const ids: string[] = [];
    for (const file of readdirSync(join(FIXTURES, 'city-hospital')).filter((f) => f.endsWith('.hl7')).sort()) {
      const res = await as['city-hospital'].post('/ingest/hl7v2').set('Content-Type', HL7).send(readFileSync(join(FIXTURES, 'city-hospital', file)));
      expect([file, res.status]).toEqual([file, 200]);
      ids.push(res.headers['x-message-id']);
    }
    for (const source of ['county-hospital', 'community-centre-a']) {
      for (const file of readdirSync(join(FIXTURES, source)).sort()) {
        const type = file.endsWith('.csv') ? 'text/csv' : 'application/json';
        const res = await as[source].post(`/ingest/${source}`).set('Content-Type', `${type}; charset=utf-8`).send(readFileSync(join(FIXTURES, source, file), 'utf8'));
        expect([file, res.status, res.body.failed]).toEqual([file, 202, 0]);
        ids.push(...(res.body.messages as { id: string }[]).map((m) => m.id));
      }
    }
    const finished = await h.waitForFinished(ids);
    expect(finished.filter((m) => m.state !== 'done').map((m) => [m.kind, m.outcome])).toEqual([]);
    const quality = await as[OFFICE].get('/ingest/quality').expect(200);
    const county = (quality.body.sources as { source: string; topUnmapped: { code: string }[] }[]).find((s) => s.source === 'county-hospital')!;
    expect(county.topUnmapped.map((u) => u.code)).toEqual(expect.arrayContaining(['0299', 'ZD099']));
  });

  it('links the cast: each person registered at several facilities is one person', async () => {
    const cast: [string, string[]][] = [
      ['339901195803120317', ['10000101', 'Z0000201', 'C0000301']], // 王晓明 at the county hospital
      ['339921196207250481', ['10000102', 'Z0000202', 'C0000302']], // no ID number at the centre
      ['339902197111090159', ['10000103', 'Z0000203']], // mistyped ID number at the county hospital
      ['339903198502010225', ['10000104', 'C0000304']], // birth date entered day-first at the centre
      ['339921199006180572', ['Z0000205', 'C0000305']],
    ];
    for (const [idNumber, mrns] of cast) {
      const res = await as[OFFICE].get(`/fhir/Patient/$ihe-pix?sourceIdentifier=urn:oid:2.16.156.10011.1.3|${idNumber}`).expect(200);
      const values = (res.body.parameter as { name: string; valueIdentifier?: { value: string } }[]).filter((p) => p.name === 'targetIdentifier').map((p) => p.valueIdentifier!.value);
      expect([idNumber.slice(-4), values]).toEqual([idNumber.slice(-4), expect.arrayContaining(mrns)]);
    }
  });

  it('a GB18030 message declared in the Content-Type is read and answered in GB18030', async () => {
    const utf8 = oru(wang, 'MSG-GB-1', 'RGB1').replace('UNICODE UTF-8', 'GB 18030-2000');
    const res = await as['city-hospital'].post('/ingest/hl7v2').set('Content-Type', 'application/hl7-v2; charset=gb18030').send(iconv.encode(utf8, 'gb18030')).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('gb18030');
    const [done] = await h.waitForFinished([res.headers['x-message-id']]);
    expect(done.state).toBe('done');
    const report = await as[OFFICE].get(`/fhir/DiagnosticReport?patient=${patientId(wang.mrn)}&identifier=RGB1`).expect(200);
    expect(JSON.stringify(report.body)).toContain('血常规');
  });

  const brokenHl7 = JSON.parse(readFileSync(join(FIXTURES, 'broken/city-hospital/expected.json'), 'utf8')) as Record<string, { location: string; ack: 'AE' | 'AR' }>;
  it.each(Object.entries(brokenHl7))('broken HL7 %s gets %j', async (file, want) => {
    const res = await as['city-hospital'].post('/ingest/hl7v2').set('Content-Type', HL7).send(readFileSync(join(FIXTURES, 'broken/city-hospital', file)));
    expect(res.status).toBe(want.ack === 'AR' ? 400 : 422);
    const ack = res.text.split('\r');
    expect(ack.find((s) => s.startsWith('MSA|'))!.split('|')[1]).toBe(want.ack);
    const err = ack.find((s) => s.startsWith('ERR|'))!.split('|');
    // ERR-2 is the location as segment^occurrence^field^repetition^component.
    const [segment, occurrence, field, , component] = err[2].split('^');
    const named = `${segment}${occurrence && occurrence !== '1' ? `[${occurrence}]` : ''}${field ? `-${field}` : ''}${component ? `.${component}` : ''}`;
    expect(named).toBe(want.location);
  });

  it.each(['county-hospital', 'community-centre-a'])('broken %s records get an OperationOutcome naming the path', async (source) => {
    const dir = join(FIXTURES, 'broken', source);
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, { stage: string; location: string; record?: number }>;
    for (const [file, want] of Object.entries(expected)) {
      const type = file.endsWith('.csv') ? 'text/csv' : 'application/json';
      const res = await as[source].post(`/ingest/${source}`).set('Content-Type', type).send(readFileSync(join(dir, file), 'utf8'));
      if (want.stage === 'split') {
        expect([file, res.status, res.body.issue[0].expression]).toEqual([file, 400, [want.location]]);
      } else {
        const failed = (res.body.messages as { state: string; outcome?: { issue: { expression: string[] }[] } }[])[want.record ?? 0];
        expect([file, failed.state, failed.outcome!.issue[0].expression]).toEqual([file, 'failed', [want.location]]);
      }
    }
  });
});
