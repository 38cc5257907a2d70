/**
 * Process entry for `npm start` (and `node dist/gateway/main.js` in the image): configuration,
 * Redis (private child or REDIS_URL), the store, the HTTP server, the demo consortium, and an
 * orderly shutdown. Any startup failure prints one line and exits 1.
 */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import express from 'express';
import Redis from 'ioredis';
import { createValidator, type Validator } from '../profiles/validator';
import { processBundle } from '../store/bundle';
import { openStore, type OpenStore } from '../store/open';
import type { Repository } from '../store/repository';
import { createApp } from './app';
import { ConfigError, loadConfig, redactUrl, type Config } from './config';
import { createHealthRouter, metricsMiddleware } from './health';
import { logger, type Logger } from './logger';
import { findRedisServer, RedisNotFoundError, startRedisServer, type RedisChild } from './redis-process';

/** The demo consortium loaded into an empty store (DEMO=true). */
export const DEMO_SIZE = { seed: 20240601, patients: 50, resources: 2000, bundleSize: 100 } as const;

const SHUTDOWN_TIMEOUT_MS = 20000;

/** A startup failure whose message is already the one line to print. */
class StartupError extends Error {}

interface Running {
  config: Config;
  redisStart?: Promise<RedisChild>;
  redisChild?: RedisChild;
  redisClient?: Redis;
  store?: OpenStore;
  server?: Server;
  demo?: Promise<void>;
  stopDemo: boolean;
}

async function main(): Promise<void> {
  const state: Running = { config: loadConfig(), stopDemo: false };
  const { config } = state;
  logger.level = config.logLevel;
  const log = logger.child({ component: 'main' });
  installSignalHandlers(state, log);

  try {
    await start(state, log);
  } catch (err) {
    await cleanup(state).catch(() => undefined);
    throw err;
  }
}

async function start(state: Running, log: Logger): Promise<void> {
  const { config } = state;
  try {
    mkdirSync(config.dataDir, { recursive: true });
  } catch (err) {
    throw new StartupError(`cannot create DATA_DIR ${config.dataDir}: ${(err as Error).message}`);
  }

  // Redis boots in the background while the validator compiles and the store opens.
  if (!config.redisUrl) {
    findRedisServer(); // fails fast, before seconds of other work
    state.redisStart = startRedisServer({ dir: join(config.dataDir, 'redis'), logger: logger.child({ component: 'redis' }) });
    state.redisStart.then(
      (child) => {
        state.redisChild = child;
      },
      () => undefined, // awaited below
    );
  }

  // Compiled before the store opens so that, once listening, nothing blocks for seconds.
  let t = Date.now();
  const validate: Validator = createValidator();
  log.debug({ ms: Date.now() - t }, 'validator compiled');

  t = Date.now();
  try {
    state.store = await openStore(
      { databaseUrl: config.databaseUrl, dataDir: config.dataDir, maxConnections: config.pgMaxConnections },
      { validate },
    );
  } catch (err) {
    const where = config.databaseUrl ? `PostgreSQL at ${redactUrl(config.databaseUrl)} (DATABASE_URL)` : `PGlite in ${join(config.dataDir, 'pglite')}`;
    throw new StartupError(`cannot open the store, ${where}: ${oneLine(err)}`);
  }

  const tStore = Date.now();
  log.debug({ ms: tStore - t }, 'store open');
  let redisUrl = config.redisUrl;
  if (state.redisStart) {
    try {
      redisUrl = (await state.redisStart).url;
    } catch (err) {
      throw new StartupError(`cannot start the private redis-server in ${join(config.dataDir, 'redis')}: ${oneLine(err)}`);
    }
  }
  state.redisClient = await connectRedis(redisUrl!, !config.redisUrl, log);

  const store = state.store;
  const app = express();
  app.disable('x-powered-by');
  app.use(metricsMiddleware);
  app.use(createHealthRouter({ db: store.db, redis: state.redisClient }));
  app.use(
    createApp({
      repo: store.repo,
      baseUrl: config.baseUrl,
      // Message, code and stack only: driver errors carry a `detail` that can quote row values.
      onError: (err) => logger.error({ err: errorSummary(err) }, 'unexpected error while handling a request'),
    }),
  );

  state.server = await listen(app, config.port);
  log.debug({ uptimeMs: Math.round(process.uptime() * 1000) }, 'listening');
  const storeKind = store.db.kind === 'pg' ? 'postgres' : 'pglite';
  log.info(
    { url: config.baseUrl, port: config.port, store: storeKind, redis: config.redisUrl ? 'external' : 'private' },
    `FHIR gateway listening on port ${config.port}, FHIR base ${config.baseUrl}, store ${storeKind}`,
  );

  if (config.demo) {
    state.demo = loadDemo(store.repo, () => state.stopDemo, logger.child({ component: 'demo' })).catch((err) => {
      logger.error({ err: oneLine(err) }, 'loading the demo consortium failed; the gateway keeps running');
    });
  }
}

async function connectRedis(url: string, isPrivate: boolean, log: Logger): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectionName: 'fhir-gateway',
    // Readiness must fail fast rather than queue commands while Redis is away.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  });
  let healthy = false;
  let lastError: Error | undefined;
  client.on('ready', () => {
    if (!healthy) log.debug('redis connection ready');
    healthy = true;
  });
  client.on('error', (err: Error) => {
    lastError = err;
    if (healthy) log.warn({ err: oneLine(err) }, 'redis connection lost; retrying');
    healthy = false;
  });
  try {
    await withTimeout(client.connect(), 10000, 'no answer within 10 s');
    await client.ping();
  } catch (err) {
    client.disconnect();
    const where = isPrivate ? 'the private redis-server' : `Redis at ${redactUrl(url)} (REDIS_URL)`;
    throw new StartupError(`cannot reach ${where}: ${oneLine(lastError ?? err)}`);
  }
  return client;
}

function listen(app: express.Express, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port);
    server.once('listening', () => resolve(server));
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new StartupError(err.code === 'EADDRINUSE' ? `port ${port} is already in use (set PORT)` : `cannot listen on port ${port}: ${err.message}`));
    });
  });
}

/**
 * Loads the synthetic demo consortium through the same bundle path clients use, once: when the
 * store holds no Organization yet, or to finish a demo load that a shutdown interrupted (its
 * first resource is there, its last is not; PUTs with fixed ids make the rerun idempotent).
 * Logs counts only (see the note in logger.ts).
 */
async function loadDemo(repo: Repository, stopped: () => boolean, log: Logger): Promise<void> {
  // Imported only when needed: with DEMO=false the generator is never loaded.
  const { generateConsortium, generateConsortiumResources } = await import('../fixtures/synthetic/consortium');
  const existing = await repo.search('Organization', [['_count', '1']], {}, 1);
  let resuming = false;
  if (existing.matches.length > 0) {
    let first: { resourceType: string; id: string } | undefined;
    let last: { resourceType: string; id: string } | undefined;
    for (const r of generateConsortiumResources(DEMO_SIZE)) {
      first ??= r;
      last = r;
    }
    resuming = first !== undefined && last !== undefined && (await exists(repo, first)) && !(await exists(repo, last));
    if (!resuming) {
      log.info('store already holds organisations; demo consortium not loaded');
      return;
    }
  }
  const started = Date.now();
  log.info(
    { patients: DEMO_SIZE.patients, resources: DEMO_SIZE.resources },
    resuming ? 'resuming an interrupted demo consortium load' : 'loading the demo consortium in the background',
  );
  let bundles = 0;
  let entries = 0;
  for (const bundle of generateConsortium(DEMO_SIZE)) {
    if (stopped()) {
      log.info({ bundles, entries }, 'demo load interrupted by shutdown; it resumes on the next start');
      return;
    }
    await processBundle(repo, bundle);
    bundles++;
    entries += bundle.entry?.length ?? 0;
    // Let waiting requests in between bundles: PGlite and the generator share this thread.
    await new Promise((resolve) => setImmediate(resolve));
  }
  log.info({ bundles, entries, seconds: (Date.now() - started) / 1000 }, 'demo consortium loaded');
}

async function exists(repo: Repository, r: { resourceType: string; id: string }): Promise<boolean> {
  try {
    await repo.read(r.resourceType, r.id);
    return true;
  } catch {
    return false;
  }
}

function installSignalHandlers(state: Running, log: Logger): void {
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1); // the 'exit' hook still kills the redis child
    }
    shuttingDown = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    force.unref();
    cleanup(state).then(
      () => process.exit(0),
      (err) => {
        log.error({ err: oneLine(err) }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Closes what is open, in reverse order of opening; safe to call at any point of startup. */
async function cleanup(state: Running): Promise<void> {
  state.stopDemo = true;
  const server = state.server;
  if (server) {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
  }
  // Let the bundle in flight commit before the store closes under it.
  if (state.demo) await state.demo;
  if (state.redisClient) await state.redisClient.quit().catch(() => state.redisClient?.disconnect());
  if (state.store) await state.store.close();
  const child = state.redisChild ?? (await state.redisStart?.catch(() => undefined));
  if (child) await child.stop();
}

function errorSummary(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  return { type: err.name, message: err.message, code: (err as { code?: unknown }).code, stack: err.stack };
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].trim() || (err instanceof Error ? err.name : 'unknown error');
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    const known = err instanceof ConfigError || err instanceof RedisNotFoundError || err instanceof StartupError;
    process.stderr.write(`${known ? (err as Error).message : `gateway failed to start: ${oneLine(err)}`}\n`);
    process.exit(1);
  });
}
