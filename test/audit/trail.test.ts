import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, Bundle } from '@medplum/fhirtypes';
import type { Queue, Worker } from 'bullmq';
import express, { type Express } from 'express';
import request from 'supertest';
import { createApp } from '../../gateway/app';
import type { Principal } from '../../gateway/auth/principal';
import { auditPatients } from '../../gateway/audit/patients';
import { AuditRecorder } from '../../gateway/audit/recorder';
import { AuditSpill } from '../../gateway/audit/spill';
import { buildAuditEvent } from '../../store/audit-event';
import { auditTrail } from '../../gateway/audit/trail';
import { startRedisServer, type RedisChild } from '../../gateway/redis-process';
import type { Repository } from '../../store/repository';
import { auditQueue, startAuditWorker, type AuditJob, type IdentifiedAuditEvent } from '../../workers/audit';
import { auditMetrics } from '../../workers/metrics';
import { redisConnection } from '../../workers/queues';
import { REDIS_URL, silent } from '../support/ingest';
import { openTestStore, type TestStore } from '../support/stores';

const FHIR = 'application/fhir+json';
const OBSERVER = { name: 'consortium-fhir-gateway', url: 'http://gw.test/fhir' };

/** Stands in for gateway/auth: a principal from test headers; X-Test-Deny answers 401 as auth would. */
function fakeAuth(app: Express): void {
  app.use((req, res, next) => {
    if (req.get('X-Test-Deny')) {
      res.status(401).json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
      return;
    }
    const clientId = req.get('X-Test-Client');
    if (clientId) {
      const principal: Principal = {
        clientId,
        facility: 'org-community-a',
        scopes: [{ context: 'system', type: '*', interactions: 'cruds' }],
        ...(req.get('X-Test-User') ? { user: { fhirUser: req.get('X-Test-User')! } } : {}),
        access: { facility: 'org-community-a', ...(req.get('X-Test-Office') ? { unrestricted: true } : {}), ...(req.get('X-Test-Break-Glass') ? { breakGlass: req.get('X-Test-Break-Glass') } : {}) },
      };
      res.locals.principal = principal;
    }
    next();
  });
}

interface Harness {
  store: TestStore;
  queue: Queue<AuditJob>;
  recorder: AuditRecorder;
  app: Express;
  workers: Worker<AuditJob>[];
  close(): Promise<void>;
}

async function harness(redisUrl: string, opts: { worker?: boolean; repoForWorker?: Repository } = {}): Promise<Harness> {
  const store = await openTestStore('postgres');
  const prefix = `{test-audit-${randomBytes(4).toString('hex')}}`;
  const connection = redisConnection(redisUrl);
  const queue = auditQueue(connection, prefix);
  const recorder = new AuditRecorder({ queue, repo: store.repo, log: silent, queueTimeoutMs: 500, retryMs: 200 });
  const workers: Worker<AuditJob>[] = [];
  if (opts.worker !== false) workers.push(startAuditWorker({ repo: opts.repoForWorker ?? store.repo, log: silent }, { connection, prefix }));
  const app = express();
  const audit = auditTrail(recorder, { observer: OBSERVER });
  // Audit first, then authentication, as createApp mounts them: a refused request is audited too.
  app.use(['/fhir', '/ingest'], audit);
  fakeAuth(app);
  // A handler using the audit API, as the FHIR routes are to: the patients of what it returns.
  app.get('/fhir/Observation/:id', async (req, res) => {
    const stored = await store.repo.read('Observation', req.params.id);
    auditPatients(res, () => stored.patients);
    res.type(FHIR).send(stored.json);
  });
  app.use(createApp({ repo: store.repo }));
  return {
    store,
    queue,
    recorder,
    app,
    workers,
    async close() {
      recorder.close();
      for (const w of workers) await w.close(true);
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await store.close();
    },
  };
}

async function auditEvents(repo: Repository, params: [string, string][] = []): Promise<AuditEvent[]> {
  const result = await repo.search('AuditEvent', [...params, ['_count', '1000']]);
  return result.matches.map((m) => m.resource as AuditEvent);
}

/** Polls until `n` AuditEvents match, then waits a little longer to see that no more arrive. */
async function waitForEvents(repo: Repository, n: number, params: [string, string][] = [], timeoutMs = 20000): Promise<AuditEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await auditEvents(repo, params);
    if (found.length >= n) {
      await new Promise((r) => setTimeout(r, 300));
      return auditEvents(repo, params);
    }
    if (Date.now() > deadline) throw new Error(`${found.length} of ${n} AuditEvents after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const patient = (id: string) => ({ resourceType: 'Patient', id, gender: 'female', birthDate: '1980-02-03' });

describe('audit trail (PostgreSQL, Redis)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness(REDIS_URL);
    await h.store.repo.update(patient('p-1') as never);
    await h.store.repo.update(patient('p-2') as never);
  });
  afterAll(() => h.close());

  it('one read leaves exactly one AuditEvent naming client, user, facility, patient and outcome', async () => {
    await request(h.app).get('/fhir/Patient/p-1').set('X-Test-Client', 'his-community-a').set('X-Test-User', 'Practitioner/dr-1').expect(200);
    const [event, ...more] = await waitForEvents(h.store.repo, 1, [['patient', 'Patient/p-1'], ['subtype', 'read']]);
    expect(more).toEqual([]);
    expect(event.type.code).toBe('rest');
    expect(event.action).toBe('R');
    expect(event.outcome).toBe('0');
    expect(event.agent.find((a) => a.requestor)!.who).toEqual({ reference: 'Practitioner/dr-1' });
    expect(event.agent.some((a) => a.who?.identifier?.value === 'his-community-a')).toBe(true);
    expect(event.agent.some((a) => a.who?.reference === 'Organization/org-community-a')).toBe(true);
    expect(event.entity!.filter((e) => e.role?.code === '1').map((e) => e.what!.reference)).toEqual(['Patient/p-1']);
  });

  it('AuditEvent?patient=Patient/x answers who looked at x: reads and searches of x, not of others', async () => {
    await request(h.app).get('/fhir/Patient/p-2').set('X-Test-Client', 'his-county').expect(200);
    await request(h.app).get('/fhir/Observation?patient=p-2&code=http://loinc.org|2345-7').set('X-Test-Client', 'his-county').expect(200);
    await request(h.app).get('/fhir/Patient/p-1/_history').set('X-Test-Client', 'his-county').expect(200);
    await waitForEvents(h.store.repo, 2, [['patient', 'Patient/p-2']]);
    const res = await request(h.app).get('/fhir/AuditEvent?patient=Patient/p-2').set('X-Test-Client', 'office-console').set('X-Test-Office', '1').expect(200);
    const events = ((res.body as Bundle).entry ?? []).map((e) => e.resource as AuditEvent);
    expect(events.map((e) => e.subtype![0].code).sort()).toEqual(['read', 'search-type']);
    const search = events.find((e) => e.subtype![0].code === 'search-type')!;
    const query = search.entity!.find((e) => e.role?.code === '24')!.query!;
    expect(Buffer.from(query, 'base64').toString('utf8')).toBe('Observation?patient=p-2&code=http%3A%2F%2Floinc.org%7C2345-7');
  });

  it('a write is audited with the patient of its body, a create with its new id', async () => {
    const res = await request(h.app).post('/fhir/Observation').set('Content-Type', FHIR).set('X-Test-Client', 'lis-county').send({ resourceType: 'Observation', status: 'final', code: { text: 'glucose' }, subject: { reference: 'Patient/p-1' } }).expect(201);
    const id = (res.body as { id: string }).id;
    const [event] = await waitForEvents(h.store.repo, 1, [['entity', `Observation/${id}`]]);
    expect(event.action).toBe('C');
    expect(event.entity!.map((e) => e.what?.reference)).toEqual([`Observation/${id}/_history/1`, 'Patient/p-1']);
  });

  it('a handler names the patients of what it returned, and a read of their Observation is found by patient', async () => {
    const { stored } = await h.store.repo.create({ resourceType: 'Observation', status: 'final', code: { text: 'HbA1c' }, subject: { reference: 'Patient/p-1' } } as never);
    await request(h.app).get(`/fhir/Observation/${stored.id}`).set('X-Test-Client', 'his-county').expect(200);
    const [event] = await waitForEvents(h.store.repo, 1, [['patient', 'Patient/p-1'], ['entity', `Observation/${stored.id}`], ['subtype', 'read']]);
    expect(event.entity!.map((e) => e.what?.reference)).toEqual([`Observation/${stored.id}`, 'Patient/p-1']);
  });

  it('an anonymous refused attempt is audited as a failure by an anonymous requestor', async () => {
    await request(h.app).get('/fhir/Patient/p-1').set('X-Test-Deny', '1').expect(401);
    const events = await waitForEvents(h.store.repo, 1, [['patient', 'Patient/p-1'], ['outcome', '4']]);
    expect(events).toHaveLength(1);
    expect(events[0].agent.find((a) => a.requestor)!.who).toEqual({ display: 'anonymous' });
    expect(events[0].outcomeDesc).toBe('HTTP 401');
  });

  it('break-glass is flagged BTG with its reason', async () => {
    await request(h.app).get('/fhir/Patient/p-2/$everything').set('X-Test-Client', 'his-county').set('X-Test-User', 'Practitioner/dr-2').set('X-Test-Break-Glass', 'unconscious in A&E').expect(200);
    const [event] = await waitForEvents(h.store.repo, 1, [['patient', 'Patient/p-2'], ['subtype', 'operation']]);
    const requestor = event.agent.find((a) => a.requestor)!;
    expect(requestor.who!.reference).toBe('Practitioner/dr-2');
    expect(requestor.purposeOfUse).toEqual([{ coding: [expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' })], text: 'unconscious in A&E' }]);
  });

  it('metadata is not audited', async () => {
    const before = (await auditEvents(h.store.repo)).length;
    await request(h.app).get('/fhir/metadata').expect(200);
    await request(h.app).get('/fhir/Patient/p-1').set('X-Test-Client', 'his-community-a').expect(200);
    const after = await waitForEvents(h.store.repo, before + 1);
    expect(after).toHaveLength(before + 1);
  });
});

describe('createApp audit hook', () => {
  it('audits /fhir and /ingest (even unanswered ones), not metadata, health or anything else', async () => {
    const events: AuditEvent[] = [];
    const store = await openTestStore('pglite');
    try {
      const app = express();
      app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
      const hook = auditTrail({ record: (e) => events.push(e) }, { observer: OBSERVER });
      // A connection lost before any answer: audited all the same, as outcome 12.
      app.get('/fhir/Patient/p-lost', hook, (req) => req.socket.destroy());
      fakeAuth(app);
      app.use(createApp({ repo: store.repo, audit: hook }));
      await request(app).get('/healthz').expect(200);
      await request(app).get('/fhir/metadata').expect(200);
      await request(app).get('/fhir/Patient?_id=p-7').set('X-Test-Client', 'his-community-a').expect(200);
      await request(app).post('/ingest/hl7v2').set('Content-Type', 'application/hl7-v2').send('MSH|^~\\&|').expect(404);
      await expect(request(app).get('/fhir/Patient/p-lost')).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 50));
      expect(events.map((e) => [e.subtype![0].code, e.outcome])).toEqual([['search-type', '0'], ['create', '4'], ['read', '12']]);
      expect(events[0].entity!.find((x) => x.role?.code === '1')!.what!.reference).toBe('Patient/p-7');
      expect(events[1].entity!.at(-1)!.description).toBe('/ingest/hl7v2');
    } finally {
      await store.close();
    }
  });
});

describe('audit worker batches', () => {
  const event = (id: string) => ({ resourceType: 'AuditEvent', id, type: { code: 'rest' }, recorded: new Date().toISOString(), agent: [{ requestor: true }], source: { observer: { display: 'test' } } }) as IdentifiedAuditEvent;

  it('writes queued events in transactions of at most 200, every one of them, old single-event jobs too', async () => {
    const batches: number[] = [];
    const h = await harness(REDIS_URL, { worker: false });
    try {
      const counting = Object.create(h.store.repo) as Repository;
      counting.applyWrites = (intents) => {
        batches.push(intents.length);
        return h.store.repo.applyWrites(intents);
      };
      const ids = Array.from({ length: 450 }, (_, i) => `batch-${i}`);
      // 88 jobs of 5 events, and 10 as a gateway from before the batching queued them.
      const jobs = Array.from({ length: 88 }, (_, j) => ({ name: 'write', data: { events: ids.slice(j * 5, j * 5 + 5).map(event) } }));
      const legacy = ids.slice(440).map((id) => ({ name: 'write', data: { event: event(id) } as AuditJob }));
      await h.queue.addBulk([...jobs, ...legacy]);
      h.workers.push(startAuditWorker({ repo: counting, log: silent }, { connection: redisConnection(REDIS_URL), prefix: (h.queue.opts.prefix as string) }));
      const events = await waitForEvents(h.store.repo, 450);
      expect(events.map((e) => e.id).sort()).toEqual([...ids].sort());
      expect(Math.max(...batches)).toBeLessThanOrEqual(200);
      expect(batches.length).toBeLessThan(45);
      expect(await h.queue.getJobCounts('waiting', 'active', 'failed')).toEqual({ waiting: 0, active: 0, failed: 0 });
    } finally {
      await h.close();
    }
  });

  it('an event the store refuses fails alone: the rest of its job and batch is written, the job keeps only it', async () => {
    const h = await harness(REDIS_URL);
    try {
      const ids = Array.from({ length: 20 }, (_, i) => `ok-${i}`);
      const jobs = [0, 1, 2, 3].map((j) => ids.slice(j * 5, j * 5 + 5).map(event));
      jobs[2].push(event('not a valid id'));
      await h.queue.addBulk(jobs.map((events) => ({ name: 'write', data: { events }, opts: { attempts: 1 } })));
      const written = await waitForEvents(h.store.repo, 20);
      expect(written.map((e) => e.id).sort()).toEqual([...ids].sort());
      for (let i = 0; i < 100 && (await h.queue.getFailedCount()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
      const failed = await h.queue.getFailed();
      expect(failed.map((j) => j.data.events.map((e) => e.id))).toEqual([['not a valid id']]);
    } finally {
      await h.close();
    }
  });

  it('the recorder hands the events of a burst over as a few jobs, not one each', async () => {
    const h = await harness(REDIS_URL, { worker: false });
    try {
      const ids = Array.from({ length: 250 }, (_, i) => `burst-${i}`);
      for (const id of ids) h.recorder.record(event(id));
      await h.recorder.drain();
      const jobs = await h.queue.getWaiting(0, -1);
      expect(jobs.length).toBeLessThanOrEqual(3);
      expect(jobs.flatMap((j) => j.data.events.map((e) => e.id)).sort()).toEqual([...ids].sort());
    } finally {
      await h.close();
    }
  });
});

describe('audit with Redis stopped', () => {
  let redis: RedisChild;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-redis-'));
    redis = await startRedisServer({ dir, logger: silent });
  });
  afterAll(async () => {
    await redis.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('every event is still written, directly to the store, and counted as a fallback', async () => {
    const h = await harness(redis.url);
    try {
      await h.store.repo.update(patient('p-9') as never);
      await request(h.app).get('/fhir/Patient/p-9').set('X-Test-Client', 'his-a').expect(200);
      await waitForEvents(h.store.repo, 1, [['patient', 'Patient/p-9']]);
      await redis.stop();
      const fallbackBefore = (await auditMetrics.fallback.get()).values[0]?.value ?? 0;
      const started = Date.now();
      for (let i = 0; i < 20; i++) await request(h.app).get('/fhir/Patient/p-9').set('X-Test-Client', 'his-a').expect(200);
      // The answers never waited on the audit.
      expect(Date.now() - started).toBeLessThan(5000);
      const events = await waitForEvents(h.store.repo, 21, [['patient', 'Patient/p-9']]);
      expect(events).toHaveLength(21);
      const fallbackAfter = (await auditMetrics.fallback.get()).values[0]?.value ?? 0;
      expect(fallbackAfter - fallbackBefore).toBe(20);
    } finally {
      await h.close().catch(() => undefined);
    }
  }, 60000);
});

describe('audit with Redis and the store both away', () => {
  it('events are spilled to disk and written once the store answers; a torn line is counted, not fatal', async () => {
    const store = await openTestStore('postgres');
    const dir = mkdtempSync(join(tmpdir(), 'audit-spill-'));
    // Nothing listens on port 1: every hand-over to the queue fails.
    const queue = auditQueue(redisConnection('redis://127.0.0.1:1'), `{test-spill-${randomBytes(4).toString('hex')}}`);
    let storeDown = true;
    const flaky = Object.create(store.repo) as Repository;
    flaky.applyWrites = (intents) => (storeDown ? Promise.reject(new Error('connection refused')) : store.repo.applyWrites(intents));
    const recorder = new AuditRecorder({ queue, repo: flaky, log: silent, spill: new AuditSpill(dir), queueTimeoutMs: 200, retryMs: 200 });
    try {
      const spilledBefore = (await auditMetrics.spilled.get()).values[0]?.value ?? 0;
      const ids = Array.from({ length: 30 }, (_, i) => `spill-${i}`);
      for (const id of ids) recorder.record(buildAuditEvent({ id, recorded: new Date().toISOString(), what: { interaction: 'read' }, status: 200, patients: ['Patient/p-5'], observer: OBSERVER }) as IdentifiedAuditEvent);
      await recorder.drain();
      expect((await auditMetrics.spilled.get()).values[0].value - spilledBefore).toBe(30);
      const [file] = readdirSync(dir);
      expect(readFileSync(join(dir, file), 'utf8').trim().split('\n')).toHaveLength(30);
      appendFileSync(join(dir, file), '{"resourceType":"AuditEv');
      storeDown = false;
      const events = await waitForEvents(store.repo, 30, [['patient', 'Patient/p-5']]);
      expect(events.map((e) => e.id).sort()).toEqual([...ids].sort());
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      recorder.close();
      await Promise.race([queue.close(), new Promise((r) => setTimeout(r, 2000))]);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});
