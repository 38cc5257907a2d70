/**
 * The ingest worker applies the jobs it holds at once in one transaction (applyMessages). The
 * end state must be the one applying them one by one gives: each message's own versions, a
 * patient's messages in arrival order (earlier ones still waiting first), and a record the
 * store refuses failing alone.
 */
import type { Observation, Patient, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import { adt, oru, type Hl7Patient } from '../../fixtures/synthetic/hl7';
import { resourceId } from '../../mappers/ids';
import { messageLog } from '../../store/messages';
import { applyMessages, prepare, type IngestDeps } from '../../workers/ingest';
import { ingestMetrics } from '../../workers/metrics';
import type { IngestJob } from '../../workers/queues';
import { demoSources, openIngestHarness, type IngestHarness } from '../support/ingest';
import { DRIVERS } from '../support/stores';

const person = (n: number, phone: string): Hl7Patient => ({ mrn: `1009${n}`, family: '周', given: `测${n}`, birth: '19700101', sex: 'F', phone });
const patientId = (p: Hl7Patient): string => resourceId('city-hospital', 'patient', p.mrn);

describe.each(DRIVERS)('ingest messages applied together on %s', (driver) => {
  let h: IngestHarness;
  let deps: IngestDeps;
  // What the worker logs, to tell the shared transaction from the one-by-one fallback.
  let logged: string[] = [];
  const fellBack = (): boolean => logged.some((l) => l.includes('applying them one by one'));
  beforeEach(() => (logged = []));
  beforeAll(async () => {
    // No worker: the test hands the jobs to applyMessages itself, as the worker does.
    h = await openIngestHarness(driver);
    deps = { repo: h.store.repo, sources: demoSources(), log: pino({ level: 'debug' }, { write: (line: string) => logged.push(line) }), mpi: h.store.mpi };
  });
  afterAll(() => h.close());

  /** Receives a message (stored, its job queued but not worked) and returns the job the worker would get. */
  async function receive(message: string): Promise<IngestJob> {
    const r = await h.ingest.receiveHl7(Buffer.from(message));
    expect(r.code).toBe('AA');
    return { messageId: r.messageId!, patientKey: (await messageLog.get(h.store.db, r.messageId!))!.patientKey };
  }

  const history = async (type: string, id: string): Promise<Resource[]> => (await h.store.repo.history({ type, id }, { count: 50 })).entries.map((e) => e.resource);

  it('several patients in one transaction: each message keeps its own versions, in arrival order', async () => {
    const [a, b, c] = [person(1, '17000009011'), person(2, '17000009021'), person(3, '17000009031')];
    const resultA1 = await receive(oru(a, 'TOG-1', 'TOGR1', 3, 1));
    const resultB = await receive(oru(b, 'TOG-2', 'TOGR2', 3, 2));
    // The same report again, its values changed (another seed): a second version of what changed.
    const resultA2 = await receive(oru(a, 'TOG-3', 'TOGR1', 3, 5));
    const registerB = await receive(adt('A08', b, 'TOG-4'));
    // C's first registration waits, not among the jobs: C's second must find it applied first.
    const earlierC = await receive(adt('A04', c, 'TOG-5'));
    const laterC = await receive(adt('A08', { ...c, phone: '17000009032' }, 'TOG-6'));
    const legacy = await receive(oru(person(4, '17000009041'), 'TOG-7', 'TOGR7', 2, 7));

    const jobs = [resultA1, resultB, resultA2, registerB, laterC, { messageId: legacy.messageId }];
    expect(await applyMessages(deps, jobs)).toEqual(jobs.map(() => undefined));
    expect(fellBack()).toBe(false);

    const ids = [resultA1, resultB, resultA2, registerB, earlierC, laterC, legacy].map((j) => j.messageId);
    const messages = await Promise.all(ids.map((id) => messageLog.get(h.store.db, id)));
    expect(messages.map((m) => m!.state)).toEqual(ids.map(() => 'done'));
    const [mA1, mB, mA2, mRegB, mC1, mC2] = messages.map((m) => m!.resources!);

    // A's first result: its Patient (created from PID), the report and 3 results, all version 1.
    expect(mA1).toHaveLength(5);
    expect(mA1.every((v) => v.endsWith('/_history/1'))).toBe(true);
    expect(mA1).toContain(`Patient/${patientId(a)}/_history/1`);
    // A's second: the report's changed results and the report as version 2; not A's Patient again.
    expect(mA2.length).toBeGreaterThan(0);
    expect(mA2.every((v) => v.endsWith('/_history/2') && !v.startsWith('Patient/'))).toBe(true);
    for (const version of mA2.filter((v) => v.startsWith('Observation/'))) {
      const [first, second] = (await history('Observation', version.split('/')[1])).reverse() as Observation[];
      expect(first.meta?.source).toMatch(/#TOG-1$/);
      expect(second.meta?.source).toMatch(/#TOG-3$/);
      expect(second.valueQuantity?.value).not.toBe(first.valueQuantity?.value);
    }
    // B: the copy of its demographics from the result, then its registration over it.
    expect(mB).toContain(`Patient/${patientId(b)}/_history/1`);
    // (A registration also writes its visit, the Encounter of PV1.)
    expect(mRegB).toContain(`Patient/${patientId(b)}/_history/2`);
    // C: the waiting registration applied first, then the update.
    expect(mC1).toContain(`Patient/${patientId(c)}/_history/1`);
    expect(mC2).toContain(`Patient/${patientId(c)}/_history/2`);
    const [newest, oldest] = (await history('Patient', patientId(c))) as Patient[];
    expect(JSON.stringify(oldest.telecom)).toContain('17000009031');
    expect(JSON.stringify(newest.telecom)).toContain('17000009032');
  });

  it('a record the store refuses fails alone, with its reason; the others of the batch are applied', async () => {
    const before = await receive(oru(person(5, '17000009051'), 'TOG-8', 'TOGR8', 2, 8));
    const refused = oru(person(6, '17000009061'), 'TOG-9', 'TOGR9', 2, 9);
    const after = await receive(oru(person(7, '17000009071'), 'TOG-10', 'TOGR10', 2, 10));
    // One of the refused message's results already exists, written by another facility: the
    // city hospital may not overwrite it, which only the store can tell.
    const taken = prepare(deps, { source: 'city-hospital', body: Buffer.from(refused), charset: null }).bundle.entry!.find((e) => e.resource!.resourceType === 'Observation')!;
    await h.store.repo.withAccess({ facility: 'county-hospital' }).update({ ...(taken.resource as Observation), subject: undefined, meta: undefined } as Resource);
    const bad = await receive(refused);

    expect(await applyMessages(deps, [before, bad, after])).toEqual([undefined, undefined, undefined]);
    expect(fellBack()).toBe(true);
    const [mBefore, mBad, mAfter] = await Promise.all([before, bad, after].map((j) => messageLog.get(h.store.db, j.messageId)));
    expect([mBefore!.state, mBad!.state, mAfter!.state]).toEqual(['done', 'failed', 'done']);
    expect(mBad!.outcome!.issue[0].diagnostics).toMatch(/written by county-hospital/);
    expect(mBefore!.resources).toHaveLength(4);
    expect(mAfter!.resources).toHaveLength(4);
    // Nothing of the refused message was written: not its report, not its patient.
    const report = prepare(deps, { source: 'city-hospital', body: Buffer.from(refused), charset: null }).bundle.entry!.find((e) => e.resource!.resourceType === 'DiagnosticReport')!;
    expect(await h.store.repo.existing([report.request!.url, `Patient/${patientId(person(6, ''))}`])).toEqual(new Set());
  });

  it('a batch applied again one by one counts each message once in /metrics', async () => {
    const applied = async (state: string): Promise<number> => (await ingestMetrics.applied.get()).values.find((v) => v.labels.source === 'city-hospital' && v.labels.state === state)?.value ?? 0;
    // Eight messages fill the first Bundle of the batch (RUN_MESSAGES), which the store writes
    // before it refuses the ninth; the batch is then rolled back and applied one by one.
    const good = [];
    for (let n = 20; n < 28; n++) good.push(await receive(oru(person(n, `170000091${n}`), `TOG-${n}`, `TOGR${n}`, 1, n)));
    const refused = oru(person(30, '17000009130'), 'TOG-30', 'TOGR30', 2, 30);
    const taken = prepare(deps, { source: 'city-hospital', body: Buffer.from(refused), charset: null }).bundle.entry!.find((e) => e.resource!.resourceType === 'Observation')!;
    await h.store.repo.withAccess({ facility: 'county-hospital' }).update({ ...(taken.resource as Observation), subject: undefined, meta: undefined } as Resource);
    const bad = await receive(refused);
    const [done0, failed0] = [await applied('done'), await applied('failed')];

    expect(await applyMessages(deps, [...good, bad])).toEqual(Array(9).fill(undefined));
    expect(fellBack()).toBe(true);
    expect((await Promise.all(good.map((j) => messageLog.get(h.store.db, j.messageId)))).map((m) => m!.state)).toEqual(Array(8).fill('done'));
    expect([(await applied('done')) - done0, (await applied('failed')) - failed0]).toEqual([8, 1]);
  });
});
