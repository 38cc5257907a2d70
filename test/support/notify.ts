import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resource, Subscription } from '@medplum/fhirtypes';
import type request from 'supertest';
import type { PatientIndex } from '../../mpi';
import { AuditRecorder } from '../../gateway/audit/recorder';
import { auditQueue, startAuditWorker } from '../../workers/audit';
import { startNotifications } from '../../workers/notify';
import { redisConnection } from '../../workers/queues';
import { silent } from './ingest';
import { pollUntil } from './poll';
import type { TestStore } from './stores';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface Hook {
  method: string;
  path: string;
  resource?: Resource;
  headers: Record<string, string | string[] | undefined>;
  at: number;
}

/** A subscriber's rest-hook endpoint: records what it is sent; `answer` decides the status (200 unless set). */
export interface HookReceiver {
  url: string;
  received: Hook[];
  answer: (hook: Hook) => number;
  /** Waits for a hook `match` accepts, and returns it. */
  next(match: (hook: Hook) => boolean, what: string): Promise<Hook>;
  close(): Promise<void>;
}

export async function startHookReceiver(): Promise<HookReceiver> {
  const receiver: HookReceiver = {
    url: '',
    received: [],
    answer: () => 200,
    next: (match, what) => pollUntil(async () => receiver.received.find(match), (h) => h !== undefined, 15000, () => `no hook for ${what}; got ${receiver.received.map((h) => `${h.method} ${h.path}`).join(', ') || 'none'}`) as Promise<Hook>,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const hook: Hook = { method: req.method!, path: req.url!, headers: req.headers, at: Date.now(), ...(body ? { resource: JSON.parse(body) as Resource } : {}) };
      const status = receiver.answer(hook);
      if (status < 300) receiver.received.push(hook);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** The dispatcher and a delivery worker over `store`, on the test Redis under a prefix of their own; quick to retry. */
export function testNotifications(store: TestStore, opts: { attempts?: number; mpi?: PatientIndex } = {}): ReturnType<typeof startNotifications> & { prefix: string } {
  const prefix = `{notify-test-${randomBytes(4).toString('hex')}}`;
  // The notifications' AuditEvents reach the store as in the gateway: the recorder, the audit queue and its worker.
  const audits = auditQueue(redisConnection(REDIS_URL), prefix);
  const audit = new AuditRecorder({ queue: audits, repo: store.repo, log: silent });
  const auditWorker = startAuditWorker({ repo: store.repo, log: silent }, { connection: redisConnection(REDIS_URL), prefix });
  const running = startNotifications(store.db, store.repo, silent, {
    connection: redisConnection(REDIS_URL),
    prefix,
    attempts: opts.attempts ?? 3,
    mpi: opts.mpi,
    backoffMs: 100,
    dispatcher: { batch: 100, idleMs: 20, retryMs: 200 },
    audit,
  });
  return {
    ...running,
    prefix,
    async stop() {
      await running.queue.obliterate({ force: true });
      await running.stop();
      await audit.drain();
      audit.close();
      await auditWorker.close();
      await audits.obliterate({ force: true });
      await audits.close();
    },
  };
}

const FHIR = 'application/fhir+json';

/** Waits until the Subscription, read by `agent`, has `status` (and an error matching `error`). */
export const subscriptionStatus = (agent: request.Agent, id: string, status: string, error?: RegExp): Promise<Subscription> =>
  pollUntil(
    async () => (await agent.get(`/fhir/Subscription/${id}`).expect(200)).body as Subscription,
    (s) => s.status === status && (!error || error.test(s.error ?? '')),
    15000,
    (s) => `Subscription/${id} is ${s.status} (${s.error ?? 'no error'}), not ${status}`,
  );

/** Subscribes as `agent` and waits until the gateway has set the Subscription active; its id. */
export async function subscribe(agent: request.Agent, criteria: string, channel: Subscription['channel']): Promise<string> {
  const res = await agent.post('/fhir/Subscription').set('Content-Type', FHIR).send({ resourceType: 'Subscription', status: 'requested', reason: 'test', criteria, channel });
  if (res.status !== 201) throw new Error(`subscribing answered ${res.status}: ${JSON.stringify(res.body.issue)}`);
  await subscriptionStatus(agent, res.body.id, 'active');
  return res.body.id as string;
}

/** A rest-hook channel to `receiver` under `path`, sending the resource (or nothing, without payload). */
export const restHook = (receiver: HookReceiver, path: string, payload = true): Subscription['channel'] => ({
  type: 'rest-hook',
  endpoint: `${receiver.url}${path}`,
  ...(payload ? { payload: FHIR } : {}),
  header: ['Authorization: Bearer hook-secret'],
});
