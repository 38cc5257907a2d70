/**
 * `npm run import -- --source county-hospital path/to/file.csv`: a batch import from the
 * operator's console, with a progress line and a final summary. It runs the same import
 * workers as the gateway, in this process, against the configured store and Redis
 * (DATABASE_URL, REDIS_URL; without REDIS_URL a private redis-server under DATA_DIR).
 * Killed, the same command resumes where it stopped; run on a finished file, it says so and
 * changes nothing. With the embedded PGlite store, stop the gateway first: PGlite is one process's.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PatientIndex } from '../mpi';
import { attachWorkflows } from '../workflows/attach';
import { loadRules } from '../mpi/rules';
import { createValidator } from '../profiles/validator';
import { importLog, type ImportFormat, type ImportJob, type ImportProgress } from '../store/imports';
import { openStore } from '../store/open';
import { openImport } from '../workers/import/open';
import { startImportWorker } from '../workers/import/worker';
import { importQueue, redisConnection } from '../workers/queues';
import { loadSources } from '../workers/sources';
import { ConfigError, loadConfig } from './config';
import { logger } from './logger';
import { maskIdNumbers } from './redact';
import { startRedisServer, type RedisChild } from './redis-process';

const USAGE = `usage: npm run import -- (--source <source id> | --format ndjson [--facility <id>]) [--charset GB18030] <file>`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { source: { type: 'string' }, format: { type: 'string' }, charset: { type: 'string' }, facility: { type: 'string' }, help: { type: 'boolean' } },
    allowPositionals: true,
  });
  if (values.help || positionals.length !== 1) throw new ConfigError(USAGE);
  const config = loadConfig();
  logger.level = config.logLevel === 'info' ? 'warn' : config.logLevel; // the progress line is the console's info
  const log = logger.child({ component: 'import' });
  const sources = loadSources(config.sourcesFile);
  let format: ImportFormat;
  let writer: { facility?: string; unrestricted: boolean };
  if (values.source) {
    const ctx = sources.get(values.source);
    if (!ctx) throw new ConfigError(`no registered source '${values.source}' (SOURCES_FILE has: ${sources.sources.map((s) => s.id).join(', ')})`);
    format = ctx.source.format === 'hl7v2' ? 'hl7v2' : 'csv';
    if (ctx.source.format === 'county-json') throw new ConfigError(`source '${values.source}' sends JSON records: import its CSV or HL7 files, or post them to /ingest`);
    writer = { facility: ctx.source.facility, unrestricted: false };
  } else if (values.format === 'ndjson') {
    format = 'ndjson';
    // The operator at the console is the consortium office unless the file is one facility's.
    writer = values.facility ? { facility: values.facility, unrestricted: false } : { unrestricted: true };
  } else throw new ConfigError(USAGE);

  let redis: RedisChild | undefined;
  let redisUrl = config.redisUrl;
  if (!redisUrl) {
    // Not the gateway's private Redis: that one belongs to the gateway process, if it runs.
    redis = await startRedisServer({ dir: join(config.dataDir, 'redis-import'), logger: log });
    redisUrl = redis.url;
  }
  const mpi = new PatientIndex(loadRules(config.mpiRulesFile));
  const store = await openStore(
    { databaseUrl: config.databaseUrl, dataDir: config.dataDir, maxConnections: config.pgMaxConnections },
    { validate: createValidator(), access: { mrnSystems: sources.mrnSystems } },
  );
  mpi.attach(store.repo);
  attachWorkflows(store.repo, { subscriptionEndpoints: config.notify.endpoints });
  const connection = redisConnection(redisUrl);
  const queue = importQueue(connection, config.queuePrefix);
  const worker = startImportWorker({ repo: store.repo, sources, log, mpi, queue }, { connection, concurrency: config.importConcurrency, prefix: config.queuePrefix });
  try {
    const path = resolve(positionals[0]);
    const { job, created } = await openImport({ repo: store.repo, queue }, { format, source: values.source, charset: values.charset, ...writer, path });
    if (!created && job.state === 'done') {
      process.stderr.write(`already imported (import ${job.id}, finished ${job.finishedAt}): nothing changed\n`);
      await summary(store.repo.executor, job);
      return 0;
    }
    process.stderr.write(`${created ? 'importing' : 'resuming'} ${path} as import ${job.id}\n`);
    const final = await follow(store.repo.executor, job.id);
    const p = await summary(store.repo.executor, final);
    return final.state !== 'done' ? 1 : p.failed > 0 ? 2 : 0;
  } finally {
    await worker.close();
    await queue.close();
    await store.close();
    await redis?.stop();
  }
}

/** Polls the import log (workers elsewhere may be doing part of the work) until the import ends. */
async function follow(db: Parameters<typeof importLog.get>[0], id: string): Promise<ImportJob> {
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  for (;;) {
    const job = (await importLog.get(db, id))!;
    const p = await importLog.progress(db, job);
    const ended = job.state !== 'reading' && job.state !== 'applying';
    if (tty) process.stderr.write(`\r${bar(p)}\x1b[K`);
    else if (ended || Date.now() - lastLine > 5000) {
      process.stderr.write(`${bar(p)}\n`);
      lastLine = Date.now();
    }
    if (ended) {
      if (tty) process.stderr.write('\n');
      return job;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function bar(p: ImportProgress): string {
  const finished = p.done + p.failed;
  const share = p.total > 0 ? Math.min(1, finished / p.total) : 0;
  const width = 24;
  const filled = Math.round(share * width);
  const eta = p.eta === undefined ? '--:--' : clock(p.eta);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ${finished.toLocaleString('en')}/${p.total.toLocaleString('en')} rows  ${Math.round(p.rate).toLocaleString('en')} rows/s  ETA ${eta}`;
}

const clock = (seconds: number): string => {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

async function summary(db: Parameters<typeof importLog.get>[0], job: ImportJob): Promise<ImportProgress> {
  const p = await importLog.progress(db, job);
  process.stderr.write(`import ${job.id} ${job.state}: ${p.read.toLocaleString('en')} records read, ${p.done.toLocaleString('en')} stored, ${p.failed.toLocaleString('en')} failed\n`);
  if (job.outcome) process.stderr.write(`  stopped: ${maskIdNumbers(job.outcome.issue[0]?.diagnostics ?? '')}\n`);
  const errors = await importLog.errors(db, job.id, 0, 5);
  for (const e of errors) process.stderr.write(`  line ${e.line}: ${maskIdNumbers(e.outcome.issue[0]?.diagnostics ?? e.outcome.issue[0]?.code ?? '')}\n`);
  if (p.failed > errors.length) process.stderr.write(`  ... all ${p.failed} at GET /imports/${job.id}/errors\n`);
  return p;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `import failed: ${(err as Error).message?.split('\n')[0]}`}\n`);
    process.exit(1);
  },
);
