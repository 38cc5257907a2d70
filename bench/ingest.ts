/**
 * bench/ingest: N ORU^R01 lab messages (8 OBX each) posted over HTTP to `POST /ingest/hl7v2`
 * by K concurrent clients (in a process of their own, bench/oru-load.ts), on PostgreSQL and
 * Redis, timed until every result is searchable.
 * Prints messages/s, resources/s, ACK latency (p50/p95), and, in the same run, the store's
 * own rate for the same resources through 100-entry transaction Bundles (bench/store's
 * method), with the ratio between the two. With --duration it keeps posting for that many
 * seconds and samples the process's memory, to show whether it stays flat.
 *
 *   npm run bench:ingest -- [--messages 20000] [--clients 16] [--concurrency 64]
 *                           [--worker-processes 0] [--duration 0] [--database-url ...] [--redis-url ...]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import pino from 'pino';
import { createApp } from '../gateway/app';
import { testAuth, tokenFor } from '../test/support/auth';
import { IngestService } from '../gateway/ingest/service';
import { processBundle } from '../store/bundle';
import { prepare, startIngestWorker } from '../workers/ingest';
import { PreparedRecords } from '../workers/prepared';
import { ingestQueue, redisConnection } from '../workers/queues';
import { loadSources } from '../workers/sources';
import { oruMessage, postOru } from './oru-load';
import { freshStore, percentile, waitUntilApplied } from './support';
import { adminQuery } from '../test/support/stores';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    clients: { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '64' },
    'worker-processes': { type: 'string', default: '0' },
    duration: { type: 'string', default: '0' },
    'database-url': { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});

const N = Number(args.messages);
const K = Number(args.clients);
const DURATION = Number(args.duration);
const WORKER_PROCESSES = Number(args['worker-processes']);
const log = pino({ level: 'warn' });
const sources = loadSources(resolve(__dirname, '../fixtures/demo-sources.json'));
const PATIENTS = Math.max(1, Math.floor(N / 5));

const message = (i: number, tag: string): string => oruMessage(i, tag, PATIENTS);

const admin = (sql: string): Promise<void> => adminQuery(sql, args['database-url']);
const post = (base: string, token: string, tag: string, count: number, until?: number) => postOru({ base, token, clients: K, count, tag, patients: PATIENTS, until });

async function main(): Promise<void> {
  const stamp = Date.now();
  const dbs = [`bench_ingest_${stamp}`, `bench_ingest_store_${stamp}`];
  const children: ChildProcess[] = [];
  console.log(`bench/ingest: ${N} ORU^R01 x 8 OBX for ${PATIENTS} patients, ${K} HTTP clients, ` +
    (WORKER_PROCESSES ? `${WORKER_PROCESSES} worker process(es)` : 'worker in the gateway process') + `, concurrency ${args.concurrency}, PostgreSQL + Redis`);
  try {
    // 1. Baseline: the same resources straight into the store, 100-entry transaction Bundles.
    const base = await freshStore(args['database-url'], dbs[1]);
    const entries: BundleEntry[] = [];
    for (let i = 0; i < N; i++) entries.push(...prepare({ sources }, { source: 'city-hospital', body: Buffer.from(message(i, 'BENCH')), charset: null }).bundle.entry!);
    // A patient appears in several messages: keep its first entry, as ingest's first write.
    const unique = [...new Map(entries.map((e) => [e.request!.url, e])).values()];
    let t0 = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < unique.length; i += 100) {
      const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: unique.slice(i, i + 100) };
      const p: Promise<unknown> = processBundle(base.store.repo, bundle).then(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 4) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const storeRate = unique.length / ((performance.now() - t0) / 1000);
    await base.store.close();

    // 2. The gateway: HTTP receipt, ingest log, BullMQ, worker(s), store.
    const { store, url } = await freshStore(args['database-url'], dbs[0]);
    const prefix = `{bench-${stamp}}`;
    const connection = redisConnection(args['redis-url']);
    const queue = ingestQueue(connection, prefix);
    const prepared = WORKER_PROCESSES === 0 ? new PreparedRecords() : undefined;
    const ingest = new IngestService({ repo: store.repo, queue, sources, log, prepared });
    if (WORKER_PROCESSES === 0) {
      startIngestWorker({ repo: store.repo, sources, log, prepared }, { connection, concurrency: Number(args.concurrency), prefix });
    } else {
      for (let i = 0; i < WORKER_PROCESSES; i++) {
        children.push(spawn(process.execPath, ['--import', 'tsx', 'gateway/worker.ts'], {
          cwd: resolve(__dirname, '..'),
          env: { ...process.env, DATABASE_URL: url, REDIS_URL: args['redis-url'], QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn', WORKER_CONCURRENCY: args.concurrency, PG_MAX_CONNECTIONS: '8' },
          stdio: ['ignore', 'inherit', 'inherit'],
        }));
      }
      await new Promise((res) => setTimeout(res, 8000)); // their validator compiles
    }
    const app = createApp({ repo: store.repo, ingest, auth: await testAuth({ tokenTtlSeconds: 3600 }) });
    const token = await tokenFor(app, 'city-hospital');
    const server = createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await post(baseUrl, token, 'WARM', 200);
    await waitUntilApplied(store, 200);

    const rss: number[] = [];
    const sampler = setInterval(() => {
      rss.push(process.memoryUsage().rss);
      // Printed as it goes, so a long --duration run shows its memory even if cut short.
      if (DURATION) console.log(`  t=${rss.length * 5}s rss ${Math.round(rss[rss.length - 1] / 1048576)} MB`);
    }, 5000);
    t0 = performance.now();
    const sent = await post(baseUrl, token, 'RUN', N, DURATION ? Date.now() + DURATION * 1000 : undefined);
    const postSeconds = (performance.now() - t0) / 1000;
    await waitUntilApplied(store, sent.sent + 200);
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);

    // Searchable: every result of the run is found by a search.
    const found = await store.repo.search('Observation', [['_summary', 'count'], ['_total', 'accurate']]);
    const observations = found.total ?? -1;
    const [{ resources }] = await store.db.query<{ resources: number }>(`SELECT sum(jsonb_array_length(resources))::int AS resources FROM ingest_message WHERE control_id LIKE 'RUN-%'`);
    const lat = sent.latencies.sort((a, b) => a - b);
    const msgRate = sent.sent / seconds;
    const resRate = resources / seconds;
    console.log(`store alone (100-entry transactions):   ${unique.length} resources at ${Math.round(storeRate)} resources/s`);
    console.log(`posted:                                  ${sent.sent} messages in ${postSeconds.toFixed(1)} s (${Math.round(sent.sent / postSeconds)}/s received)`);
    console.log(`applied end to end:                      ${Math.round(msgRate)} messages/s, ${Math.round(resRate)} resources/s (${resources} resources in ${seconds.toFixed(1)} s)`);
    console.log(`ACK latency:                             p50 ${percentile(lat, 50).toFixed(1)} ms, p95 ${percentile(lat, 95).toFixed(1)} ms, max ${lat[lat.length - 1].toFixed(1)} ms`);
    console.log(`ratio ingest / store transaction rate:   ${(resRate / storeRate * 100).toFixed(1)}%`);
    console.log(`searchable Observations:                 ${observations} (expected ${(sent.sent + 200) * 8})`);
    if (rss.length > 1) console.log(`gateway RSS (MB) every 5 s:              ${rss.map((b) => Math.round(b / 1048576)).join(' ')}`);
    server.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await store.close();
  } finally {
    for (const c of children) c.kill('SIGTERM');
    for (const db of dbs) await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
