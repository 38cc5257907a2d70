/**
 * bench/store: load a synthetic consortium through 100-entry transaction Bundles on PostgreSQL,
 * load the same rows with COPY into a bare table in the same run (the storage ceiling of this
 * machine), then measure search latency over HTTP against the loaded store, with auth, access
 * rules and audit off and on side by side.
 *
 *   npm run bench:store -- [--resources 1000000] [--patients 20000] [--concurrency 4]
 *                          [--samples 500] [--audit-worker inline|process] [--database-url postgres://...] [--redis-url redis://...]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import express from 'express';
import Redis from 'ioredis';
import pino from 'pino';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { generateConsortium, generatorSummary, type GeneratorOptions } from '../fixtures/synthetic/consortium';
import { createApp } from '../gateway/app';
import { asFacility, asOffice, testAuth, tokenFor } from '../test/support/auth';
import { AuditRecorder } from '../gateway/audit/recorder';
import { auditTrail } from '../gateway/audit/trail';
import { rateLimit } from '../gateway/rate-limit';
import { auditQueue, startAuditWorker } from '../workers/audit';
import { createValidator } from '../profiles/validator';
import { processBundle } from '../store/bundle';
import { openStore } from '../store/open';
import { percentile } from './support';
import { adminQuery } from '../test/support/stores';

const { values: args } = parseArgs({
  options: {
    resources: { type: 'string', default: '1000000' },
    patients: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '4' },
    samples: { type: 'string', default: '500' },
    // inline: the audit worker in the gateway's process (npm start's default); process: in an
    // `npm run worker` process of its own (AUDIT_WORKER=false on the gateway).
    'audit-worker': { type: 'string', default: 'inline' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'database-url': { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

const gen: GeneratorOptions = {
  seed: 7,
  resources: Number(args.resources),
  patients: Number(args.patients),
  bundleSize: 100,
  bigPatientResources: 500,
};

const silent = pino({ level: 'silent' });

/** The facility whose clinicians the latency samples stand for (a community centre reading the shared record). */
const FACILITY = 'community-centre-a';

const admin = (sql: string): Promise<void> => adminQuery(sql, args['database-url']);

async function main(): Promise<void> {
  const summary = generatorSummary(gen);
  const dbName = `bench_store_${Date.now()}`;
  await admin(`CREATE DATABASE ${dbName}`);
  const url = new URL(args['database-url']);
  url.pathname = `/${dbName}`;
  const store = await openStore({ databaseUrl: url.toString(), maxConnections: Number(args.concurrency) + 4 }, { validate: createValidator() });
  console.log(`bench/store: ${summary.resources} resources, ${summary.patients} patients, bundles of ${gen.bundleSize}, concurrency ${args.concurrency}, PostgreSQL database ${dbName}`);

  try {
    // Generation alone, so its share of both load figures below is visible.
    let t0 = performance.now();
    let generated = 0;
    for (const b of generateConsortium(gen)) generated += b.entry!.length;
    const genSeconds = (performance.now() - t0) / 1000;
    console.log(`generate only:        ${generated} resources in ${genSeconds.toFixed(1)} s (${Math.round(generated / genSeconds)}/s)`);

    // 1. Transaction Bundles through the store, as ingest will submit them.
    let bigPatient: string | undefined;
    t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const inFlight = new Set<Promise<unknown>>();
    let loaded = 0;
    for (const bundle of generateConsortium(gen)) {
      bigPatient ??= bundle.entry!.find((e) => e.resource?.resourceType === 'Patient')?.resource?.id;
      const p = processBundle(store.repo, bundle).then(() => {
        loaded += bundle.entry!.length;
        inFlight.delete(p);
      });
      inFlight.add(p);
      if (inFlight.size >= Number(args.concurrency)) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const txSeconds = (performance.now() - t0) / 1000;
    const txRate = loaded / txSeconds;
    const cpu = process.cpuUsage(cpu0);
    const nodeCpu = (cpu.user + cpu.system) / 1e6;

    // 2. The same rows with COPY into a bare table (no indexes, no history, no validation).
    const copyClient = new Client({ connectionString: url.toString() });
    await copyClient.connect();
    await copyClient.query('CREATE TABLE bench_copy (type text, id text, content jsonb)');
    t0 = performance.now();
    const stream = copyClient.query(copyFrom('COPY bench_copy (type, id, content) FROM STDIN WITH (FORMAT csv)'));
    let copied = 0;
    for (const bundle of generateConsortium(gen)) {
      let chunk = '';
      for (const e of bundle.entry!) {
        const r = e.resource!;
        chunk += `${r.resourceType},${r.id},"${JSON.stringify(r).replace(/"/g, '""')}"\n`;
        copied++;
      }
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    stream.end();
    await once(stream, 'finish');
    const copySeconds = (performance.now() - t0) / 1000;
    const copyRate = copied / copySeconds;
    await copyClient.query('DROP TABLE bench_copy');
    await copyClient.end();

    console.log(`transaction bundles:  ${loaded} resources in ${txSeconds.toFixed(1)} s = ${Math.round(txRate)} resources/s (gateway process CPU ${nodeCpu.toFixed(1)} s)`);
    console.log(`COPY, bare table:     ${copied} rows in ${copySeconds.toFixed(1)} s = ${Math.round(copyRate)} rows/s`);
    console.log(`ratio transaction/COPY: ${(txRate / copyRate * 100).toFixed(1)}%`);

    // 3. Latency of typical clinical queries, over HTTP, one at a time, through two apps on the
    //    same store: "off" (no token check, unrestricted store, no audit) and "on" as the gateway
    //    runs (a facility's token, the access filter, scope checks, the audit trail queued to
    //    Redis and written by its worker, the rate limiter). Both apps run the same samples,
    //    in alternating blocks.
    await store.db.query('ANALYZE');
    const redis = new Redis(args['redis-url'], { maxRetriesPerRequest: null });
    const prefix = `{bench-store-${Date.now()}}`;
    const audits = auditQueue(redis, prefix);
    // The audit is written on the same server, in a database of its own: AuditEvents are in the
    // patient's compartment, and the unrestricted "off" app would return them in $everything.
    const auditDb = `${dbName}_audit`;
    await admin(`CREATE DATABASE ${auditDb}`);
    const auditUrl = new URL(url);
    auditUrl.pathname = `/${auditDb}`;
    const auditStore = await openStore({ databaseUrl: auditUrl.toString(), maxConnections: 4 }, { validate: createValidator() });
    const recorder = new AuditRecorder({ queue: audits, repo: auditStore.repo, log: silent });
    const separate = args['audit-worker'] === 'process';
    const auditWorker = separate ? undefined : startAuditWorker({ repo: auditStore.repo, log: silent }, { connection: redis, prefix });
    const workerProcess = separate
      ? spawn(process.execPath, ['--import', 'tsx', 'gateway/worker.ts'], {
          cwd: resolve(__dirname, '..'),
          env: { ...process.env, DATABASE_URL: auditUrl.toString(), REDIS_URL: args['redis-url'], QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn' },
          stdio: ['ignore', 'ignore', 'inherit'],
        })
      : undefined;
    // The layers one at a time, so the cost of each is visible: the facility's access rules
    // alone (principal set, no token), then its token checked (with scopes), then the rate
    // limiter, then the audit trail: the last is the gateway as it runs.
    const auth = await testAuth({ tokenTtlSeconds: 3600 });
    const limiter = rateLimit({ redis, perMinute: 10_000_000, keyPrefix: prefix, log: silent });
    const layers: { name: string; app: express.Express; token: boolean; audited: boolean }[] = [
      { name: 'off', app: express().use(asOffice(), createApp({ repo: store.repo })), token: false, audited: false },
      { name: 'access rules', app: express().use(asFacility(FACILITY), createApp({ repo: store.repo })), token: false, audited: false },
      { name: '+ token', app: createApp({ repo: store.repo, auth }), token: true, audited: false },
      { name: '+ rate limit', app: createApp({ repo: store.repo, auth, rateLimit: limiter }), token: true, audited: false },
      { name: '+ audit = on', app: createApp({ repo: store.repo, auth, rateLimit: limiter, audit: auditTrail(recorder, { observer: { name: 'bench-store', url: 'http://127.0.0.1/fhir' } }) }), token: true, audited: true },
    ];
    const servers: Server[] = [];
    const targets: { name: string; base: string; headers: Record<string, string>; audited: boolean }[] = [];
    for (const layer of layers) {
      const server = layer.app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push(server);
      const headers: Record<string, string> = layer.token ? { authorization: `Bearer ${await tokenFor(layer.app, FACILITY)}` } : {};
      targets.push({ name: layer.name, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`, headers, audited: layer.audited });
    }
    const samples = Number(args.samples);
    const sampledPatients = await store.db.query<{ content: string }>(
      `SELECT content::text AS content FROM resource WHERE type = 'Patient' ORDER BY random() LIMIT ${samples}`,
    );
    const pats = sampledPatients.map((r) => JSON.parse(r.content) as Patient);
    const queries: [string, (i: number) => string][] = [
      ['Patient by identifier', (i) => { const id = pats[i % pats.length].identifier![0]; return `Patient?identifier=${encodeURIComponent(`${id.system}|${id.value}`)}`; }],
      ['Observation patient+code+date', (i) => `Observation?patient=${pats[i % pats.length].id}&code=${encodeURIComponent('http://loinc.org|718-7')}&date=ge2021-01-01&date=lt2025-01-01`],
      ['DiagnosticReport patient+_include=result', (i) => `DiagnosticReport?patient=${pats[i % pats.length].id}&_include=DiagnosticReport:result`],
      [`Patient/$everything (${bigPatient}, ~500)`, () => `Patient/${bigPatient}/$everything`],
    ];
    const timed = async (base: string, path: string, headers: Record<string, string>): Promise<[number, number]> => {
      const t = performance.now();
      const res = await fetch(`${base}/${path}`, { headers });
      const text = await res.text();
      // Latency ends at the last byte received; the client's parse is not the server's time.
      const ms = performance.now() - t;
      const body = JSON.parse(text) as Bundle;
      if (res.status !== 200) throw new Error(`${path} -> ${res.status} ${JSON.stringify(body)}`);
      return [ms, body.entry?.length ?? 0];
    };
    const BLOCK = 20;
    const auditQuiet = async (): Promise<void> => {
      await recorder.drain();
      for (;;) {
        const counts = await audits.getJobCounts('waiting', 'active', 'delayed');
        if (counts.waiting + counts.active + counts.delayed === 0) return;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const col = 16;
    console.log(`\nlatency over HTTP, to the last byte, p50/p95 ms (sequential requests; blocks of ${BLOCK} samples on each layer in turn, the audit written out before each unaudited block; audit worker ${separate ? 'in a process of its own' : 'in the gateway process'})`);
    console.log(`${'query'.padEnd(44)}${targets.map((t) => t.name.padStart(col)).join('')}   p95 on/off   entries off/on`);
    for (const [name, make] of queries) {
      for (let i = 0; i < 20; i++) for (const t of targets) await timed(t.base, make(i), t.headers);
      const times = targets.map(() => [] as number[]);
      const entries = targets.map(() => 0);
      // Blocks of samples, rotating which layer goes first. Before an unaudited block the audit
      // of the audited requests is written out, so that the baseline does not pay for the audit
      // worker's writes on the same server (stop 10 found it did, flattering the ratio).
      for (let start = 0, block = 0; start < samples; start += BLOCK, block++) {
        const end = Math.min(samples, start + BLOCK);
        for (let k = 0; k < targets.length; k++) {
          const j = (k + block) % targets.length;
          const t = targets[j];
          if (!t.audited) await auditQuiet();
          for (let i = start; i < end; i++) {
            const [ms, n] = await timed(t.base, make(i), t.headers);
            times[j].push(ms);
            entries[j] += n;
          }
        }
      }
      for (const t of times) t.sort((x, y) => x - y);
      const cell = (t: number[]): string => `${percentile(t, 50).toFixed(2)}/${percentile(t, 95).toFixed(2)}`.padStart(col);
      const ratio = percentile(times.at(-1)!, 95) / percentile(times[0], 95);
      console.log(`${name.padEnd(44)}${times.map(cell).join('')}   ${ratio.toFixed(3).padStart(10)}   ${(entries[0] / samples).toFixed(1)}/${(entries.at(-1)! / samples).toFixed(1)}`);
    }
    await recorder.drain();
    const audited = (await auditStore.db.query<{ n: string }>(`SELECT count(*) AS n FROM resource WHERE type = 'AuditEvent'`))[0].n;
    console.log(`audit events written by the worker during the run: ${audited}`);
    recorder.close();
    await auditWorker?.close();
    if (workerProcess) {
      workerProcess.kill('SIGTERM');
      await once(workerProcess, 'exit');
    }
    await audits.obliterate({ force: true });
    await audits.close();
    await redis.quit();
    for (const server of servers) server.close();
    await auditStore.close();
    await admin(`DROP DATABASE IF EXISTS ${auditDb} WITH (FORCE)`);
  } finally {
    await store.close();
    await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
