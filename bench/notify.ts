/**
 * bench/notify: notification latency, from the triggering write (the version's
 * meta.lastUpdated, stamped in its transaction) to the subscriber's rest-hook receiving it,
 * on PostgreSQL and Redis, in one process as `npm start` runs it (gateway, ingest worker,
 * dispatcher, delivery worker, audit worker writing each delivery's AuditEvent) with the
 * receiver beside them. Same run, same store:
 *   1. baseline ingest: bench/ingest's load (ORU^R01, 8 OBX each, K HTTP clients) with no Subscription;
 *   2. idle: a facility subscribes to the city hospital's lab reports; single reports written
 *      one at a time with nothing else running: the latency floor;
 *   3. loaded: the same ingest load again, every DiagnosticReport it stores notified.
 * Prints p50/p95/max of each, the loaded/idle ratio, and ingest throughput with and without.
 *
 *   npm run bench:notify -- [--messages 3000] [--clients 16] [--concurrency 64] [--idle 200] [--database-url ...] [--redis-url ...]
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DiagnosticReport, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import { createApp } from '../gateway/app';
import { AuditRecorder } from '../gateway/audit/recorder';
import { IngestService } from '../gateway/ingest/service';
import { testAuth, tokenFor } from '../test/support/auth';
import { auditQueue, startAuditWorker } from '../workers/audit';
import { startIngestWorker } from '../workers/ingest';
import { PreparedRecords } from '../workers/prepared';
import { startNotifications } from '../workers/notify';
import { ingestQueue, redisConnection } from '../workers/queues';
import { loadSources } from '../workers/sources';
import { attachWorkflows } from '../workflows/attach';
import { postOru } from './oru-load';
import { freshStore, percentile, waitUntilApplied } from './support';
import { adminQuery } from '../test/support/stores';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '3000' },
    clients: { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '64' },
    idle: { type: 'string', default: '200' },
    'database-url': { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const N = Number(args.messages);
const K = Number(args.clients);
const IDLE = Number(args.idle);
const log = pino({ level: 'warn' });
const sources = loadSources(resolve(__dirname, '../fixtures/demo-sources.json'));
const PATIENTS = Math.max(1, Math.floor(N / 5));

/** Receipt time minus the notified version's lastUpdated, per report id. */
function receiver(): { server: Server; latencies: Map<string, number> } {
  const latencies = new Map<string, number>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const at = Date.now();
      const r = JSON.parse(body) as Resource;
      latencies.set(`${r.id}/${r.meta!.versionId}`, at - Date.parse(r.meta!.lastUpdated!));
      res.writeHead(200).end();
    });
  });
  return { server, latencies };
}

const line = (label: string, ms: number[]): string => {
  const s = [...ms].sort((a, b) => a - b);
  return `${label.padEnd(36)} n=${String(s.length).padStart(5)}  p50 ${percentile(s, 50).toFixed(0).padStart(4)} ms  p95 ${percentile(s, 95).toFixed(0).padStart(4)} ms  max ${s[s.length - 1].toFixed(0).padStart(5)} ms`;
};

async function waitFor(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const stamp = Date.now();
  const db = `bench_notify_${stamp}`;
  console.log(`bench/notify: ${N} ORU^R01 x 8 OBX per loaded phase, ${K} HTTP clients, worker concurrency ${args.concurrency}, PostgreSQL + Redis, one process`);
  try {
    const { store } = await freshStore(args['database-url'], db);
    attachWorkflows(store.repo);
    const prefix = `{bench-notify-${stamp}}`;
    const connection = redisConnection(args['redis-url']);
    const queue = ingestQueue(connection, prefix);
    // As the gateway process runs them: its worker is handed what its receipt mapped.
    const prepared = new PreparedRecords();
    const ingest = new IngestService({ repo: store.repo, queue, sources, log, prepared });
    const worker = startIngestWorker({ repo: store.repo, sources, log, prepared }, { connection, concurrency: Number(args.concurrency), prefix });
    // As in the gateway, the notifications' AuditEvents go through the recorder, the audit queue and its worker.
    const auditJobs = auditQueue(connection, prefix);
    const audit = new AuditRecorder({ queue: auditJobs, repo: store.repo, log });
    const audits = startAuditWorker({ repo: store.repo, log }, { connection, prefix });
    const notifications = startNotifications(store.db, store.repo, log, { connection, prefix, audit });
    const app = createApp({ repo: store.repo, ingest, auth: await testAuth({ tokenTtlSeconds: 3600 }) });
    const gateway = createServer(app).listen(0, '127.0.0.1');
    await once(gateway, 'listening');
    const base = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    const hook = receiver();
    hook.server.listen(0, '127.0.0.1');
    await once(hook.server, 'listening');
    const token = await tokenFor(app, 'city-hospital');
    const centre = await tokenFor(app, 'community-centre-a');

    let applied = 0;
    const load = async (tag: string): Promise<{ rate: number; ack: number[] }> => {
      const t0 = performance.now();
      const sent = await postOru({ base, token, clients: K, count: N, tag, patients: PATIENTS });
      applied += sent.sent;
      await waitUntilApplied(store, applied);
      return { rate: sent.sent / ((performance.now() - t0) / 1000), ack: sent.latencies };
    };

    // 1. The load alone: nothing subscribed.
    await postOru({ base, token, clients: K, count: 200, tag: 'WARM', patients: PATIENTS });
    applied += 200;
    await waitUntilApplied(store, applied);
    const before = await load('BASE');

    // 2. Subscribe, then the floor: one report at a time, nothing else running.
    const res = await fetch(`${base}/fhir/Subscription`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${centre}` },
      body: JSON.stringify({ resourceType: 'Subscription', status: 'requested', reason: 'lab reports from the city hospital', criteria: 'DiagnosticReport?status=final', channel: { type: 'rest-hook', endpoint: `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/hook`, payload: 'application/fhir+json' } }),
    });
    const sub = (await res.json()) as { id: string };
    for (let tries = 0; ; tries++) {
      const s = (await (await fetch(`${base}/fhir/Subscription/${sub.id}`, { headers: { authorization: `Bearer ${centre}` } })).json()) as { status: string };
      if (s.status === 'active') break;
      if (tries > 300) throw new Error('the Subscription did not become active');
      await new Promise((r) => setTimeout(r, 50));
    }
    const hospital = store.repo.withAccess({ facility: 'city-hospital' });
    for (let i = 0; i < IDLE; i++) {
      const report: DiagnosticReport = { resourceType: 'DiagnosticReport', status: 'final', code: { text: '血常规' } };
      const { stored } = await hospital.create(report);
      await waitFor(`idle report ${i}`, () => hook.latencies.has(`${stored.id}/${stored.versionId}`), 10000);
    }
    const idle = [...hook.latencies.values()];
    hook.latencies.clear();

    // 3. The load again, every report notified.
    const during = await load('RUN');
    await waitFor(`${N} notifications`, () => hook.latencies.size >= N, 120000);
    const loaded = [...hook.latencies.values()];

    const p95 = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 95);
    console.log(line('idle (one report at a time):', idle));
    console.log(line('under the ingest load:', loaded));
    console.log(`ratio p95 loaded / idle:             ${(p95(loaded) / p95(idle)).toFixed(2)}`);
    console.log(`ingest without / with a Subscription: ${Math.round(before.rate)} / ${Math.round(during.rate)} messages/s (${((during.rate / before.rate) * 100).toFixed(1)}%), ACK p95 ${p95(before.ack).toFixed(1)} / ${p95(during.ack).toFixed(1)} ms`);
    console.log(`notifications received in the loaded phase: ${loaded.length} of ${N} reports`);

    gateway.close();
    hook.server.close();
    await notifications.queue.obliterate({ force: true });
    await notifications.stop();
    await audit.drain();
    audit.close();
    await audits.close();
    await auditJobs.obliterate({ force: true });
    await auditJobs.close();
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await store.close();
  } finally {
    await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`, args['database-url']).catch(() => undefined);
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
