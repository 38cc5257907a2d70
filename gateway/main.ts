/**
 * Process entry for `npm start` (and `node dist/gateway/main.js` in the image): configuration,
 * Redis (private child or REDIS_URL), the store, the HTTP server, the demo consortium, and an
 * orderly shutdown. Any startup failure prints one line and exits 1.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import type { Queue, Worker } from 'bullmq';
import express from 'express';
import Redis from 'ioredis';
import { createValidator, type Validator } from '../profiles/validator';
import { PatientIndex } from '../mpi';
import { attachWorkflows } from '../workflows/attach';
import { parseRules, type RecognitionRules } from '../workflows/recognition/match';
import { loadRules } from '../mpi/rules';
import { openStore, type OpenStore } from '../store/open';
import { auditQueue, startAuditWorker, type AuditJob } from '../workers/audit';
import { forwardLog } from '../store/forward-log';
import { Forwarder } from '../workers/forward';
import { startImportRecovery, startImportWorker } from '../workers/import/worker';
import { startIngestWorker } from '../workers/ingest';
import { PreparedRecords } from '../workers/prepared';
import { startNotifications } from '../workers/notify';
import { registerQueueDepth } from '../workers/metrics';
import { importQueue, ingestQueue, redisConnection, type ImportJobData, type IngestJob } from '../workers/queues';
import { startRecovery } from '../workers/recovery';
import { loadSources, type SourceRegistry } from '../workers/sources';
import { queueBoard } from './admin';
import { createApp, errorHandler } from './app';
import { createAuth, type Auth } from './auth';
import { loadClients, type ClientRegistry } from './auth/clients';
import { redisReplayGuard } from './auth/replay';
import { officeOnly } from './auth/require';
import { persistentSigningKey, signingKeyFromJwk, type SigningKey } from './auth/signing-key';
import { AuditRecorder } from './audit/recorder';
import { AuditSpill } from './audit/spill';
import { auditTrail } from './audit/trail';
import { loadDemo, loadDemoMessages } from './demo';
import { ExportService } from './export/service';
import { createMllpServer } from './ingest/mllp';
import { attachWebsocket } from './notify/websocket';
import { IngestService } from './ingest/service';
import { ConfigError, loadConfig, redactUrl, type Config } from './config';
import { applyServerTimeouts, requestTimeout, securityHeaders } from './hardening';
import { rateLimit } from './rate-limit';
import { createHealthRouter, metricsMiddleware } from './health';
import { logger, type Logger } from './logger';
import { findRedisServer, RedisNotFoundError, startRedisServer, type RedisChild } from './redis-process';
import { withTimeout } from '../workers/with-timeout';

const SHUTDOWN_TIMEOUT_MS = 20000;

/** Stranded messages (their job lost with Redis) are queued again after a minute. */
const RECOVERY = { intervalMs: 30_000, graceMs: 60_000 };

/** A startup failure whose message is already the one line to print. */
class StartupError extends Error {}

interface Running {
  config: Config;
  redisStart?: Promise<RedisChild>;
  redisChild?: RedisChild;
  redisClient?: Redis;
  store?: OpenStore;
  server?: Server;
  mllp?: TcpServer;
  queue?: Queue<IngestJob>;
  worker?: Worker<IngestJob>;
  importQueue?: Queue<ImportJobData>;
  importWorker?: Worker<ImportJobData>;
  forwarder?: Forwarder;
  stopImportRecovery?: () => void;
  auditQueue?: Queue<AuditJob>;
  auditWorker?: Worker<AuditJob>;
  audit?: AuditRecorder;
  exports?: ExportService;
  stopRecovery?: () => void;
  notify?: { stop(force?: boolean): Promise<void> };
  websocket?: { close(): Promise<void> };
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

  let sources: SourceRegistry;
  try {
    sources = loadSources(config.sourcesFile);
  } catch (err) {
    throw new StartupError(`cannot load the sources (SOURCES_FILE): ${oneLine(err)}`);
  }
  let mpi: PatientIndex;
  try {
    mpi = new PatientIndex(loadRules(config.mpiRulesFile));
  } catch (err) {
    throw new StartupError(`cannot load the patient index rules (MPI_RULES_FILE): ${oneLine(err)}`);
  }

  let recognitionRules: RecognitionRules | undefined;
  try {
    recognitionRules = config.recognitionRulesFile ? parseRules(JSON.parse(readFileSync(config.recognitionRulesFile, 'utf8'))) : undefined;
  } catch (err) {
    throw new StartupError(`cannot load the result recognition rules (RECOGNITION_RULES_FILE): ${oneLine(err)}`);
  }

  let clients: ClientRegistry;
  try {
    clients = loadClients(config.clientsFile);
  } catch (err) {
    throw new StartupError(`cannot load the clients (CLIENTS_FILE): ${oneLine(err)}`);
  }
  let signingKey: SigningKey;
  try {
    signingKey = config.signingKeyJwk ? await signingKeyFromJwk(config.signingKeyJwk) : await persistentSigningKey(join(config.dataDir, 'auth'));
  } catch (err) {
    throw new StartupError(`cannot load the token signing key (${config.signingKeyJwk ? 'AUTH_SIGNING_KEY' : `DATA_DIR/auth`}): ${oneLine(err)}`);
  }

  // Compiled before the store opens so that, once listening, nothing blocks for seconds.
  let t = Date.now();
  const validate: Validator = createValidator();
  log.debug({ ms: Date.now() - t }, 'validator compiled');

  t = Date.now();
  try {
    state.store = await openStore(
      { databaseUrl: config.databaseUrl, dataDir: config.dataDir, maxConnections: config.pgMaxConnections },
      { validate, access: { mrnSystems: sources.mrnSystems } },
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
  mpi.attach(store.repo);
  attachWorkflows(store.repo, { subscriptionEndpoints: config.notify.endpoints });
  const connection = redisConnection(redisUrl!);
  const queue = (state.queue = ingestQueue(connection, config.queuePrefix));
  registerQueueDepth(queue);
  const ingestLog = logger.child({ component: 'ingest' });
  // An inline worker applies mostly what this process received: it is handed the mapped records.
  const prepared = config.inlineWorker ? new PreparedRecords() : undefined;
  const ingest = new IngestService({ repo: store.repo, queue, sources, log: ingestLog, prepared });
  if (config.inlineWorker) {
    state.worker = startIngestWorker({ repo: store.repo, sources, log: ingestLog, mpi, prepared }, { connection, concurrency: config.workerConcurrency, prefix: config.queuePrefix });
    state.stopRecovery = await startRecovery(store.db, queue, ingestLog, RECOVERY);
  }
  const imports = (state.importQueue = importQueue(connection, config.queuePrefix));
  registerQueueDepth(imports, 'import_queue_jobs');
  if (config.inlineWorker) {
    const importLog = logger.child({ component: 'import' });
    state.importWorker = startImportWorker({ repo: store.repo, sources, log: importLog, mpi, queue: imports }, { connection, concurrency: config.importConcurrency, prefix: config.queuePrefix });
    state.stopImportRecovery = await startImportRecovery({ repo: store.repo, queue: imports }, importLog);
  }

  if (config.forward) {
    state.forwarder = new Forwarder(store.db, config.forward, logger.child({ component: 'forward' }));
    await state.forwarder.start();
  } else if (await store.db.transaction((tx) => forwardLog.disable(tx))) {
    // The gateway decides (worker processes only forward when told to): without FORWARD_URL nothing is captured.
    log.info('forwarding is off (no FORWARD_URL): changes waiting for the upstream were dropped');
  }

  const auth: Auth = createAuth({
    clients,
    signingKey,
    issuer: config.authIssuer,
    audience: config.baseUrl,
    tokenTtlSeconds: config.accessTokenTtl,
    officeFacility: config.officeFacility,
    // Shared by every gateway on this Redis, so an assertion replayed at another one fails too.
    replay: redisReplayGuard(state.redisClient),
    oidc: config.oidc,
  });
  const auditLog = logger.child({ component: 'audit' });
  const audits = (state.auditQueue = auditQueue(connection, config.queuePrefix));
  registerQueueDepth(audits, 'audit_queue_jobs');
  state.audit = new AuditRecorder({ queue: audits, repo: store.repo, log: auditLog, spill: new AuditSpill(join(config.dataDir, 'audit-spill')) });
  await state.audit.replaySpill().catch((err: Error) => auditLog.error({ err: oneLine(err) }, 'could not write the spilled audit events; they stay on disk'));
  if (config.auditWorker) state.auditWorker = startAuditWorker({ repo: store.repo, log: auditLog }, { connection, prefix: config.queuePrefix });
  const notifyLog = logger.child({ component: 'notify' });
  if (config.inlineWorker) state.notify = startNotifications(store.db, store.repo, notifyLog, { connection, prefix: config.queuePrefix, attempts: config.notify.attempts, mpi, audit: state.audit });

  // The logger's err serializer keeps name, code and masked message: never the stack, nor a driver's `detail`.
  const onError = (err: unknown): void => logger.error({ err }, 'unexpected error while handling a request');
  const exportLog = logger.child({ component: 'export' });
  const bulkExports = (state.exports = new ExportService({ dir: join(config.dataDir, 'exports'), onError: (err) => exportLog.error({ err }, 'a bulk export failed') }));
  const stale = await bulkExports.recover();
  if (stale > 0) exportLog.warn({ jobs: stale }, 'bulk exports left running by the previous process are marked failed');
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders('/admin/queues'));
  app.use(requestTimeout(config.requestTimeoutMs));
  app.use(metricsMiddleware);
  if (!config.metricsPublic) app.use('/metrics', auth.authenticate, officeOnly('Metrics'));
  app.use(createHealthRouter({ db: store.db, redis: state.redisClient }));
  app.use(
    createApp({
      repo: store.repo,
      ingest,
      mpi,
      auth,
      admin: queueBoard([queue, imports, audits], '/admin/queues'),
      imports: { queue: imports, sources, uploadDir: join(config.dataDir, 'imports'), importDir: config.importDir, maxUploadBytes: config.maxImportBytes },
      baseUrl: config.baseUrl,
      onError,
      audit: auditTrail(state.audit, { observer: { name: 'consortium-fhir-gateway', url: config.baseUrl }, onError }),
      rateLimit: config.rateLimitPerMinute > 0 ? rateLimit({ redis: state.redisClient, perMinute: config.rateLimitPerMinute, keyPrefix: config.queuePrefix, log: logger.child({ component: 'rate-limit' }) }) : undefined,
      maxBodyBytes: config.maxBodyBytes,
      exports: bulkExports,
      websocket: true,
      recognitionRules,
    }),
  );
  app.use(errorHandler(onError));

  const server = createServer(app);
  applyServerTimeouts(server, config.requestTimeoutMs);
  state.websocket = attachWebsocket(server, { repo: store.repo, verify: auth.verify, subscriber: new Redis(redisUrl!), prefix: config.queuePrefix, log: notifyLog });
  state.server = await listen(server, config.port, 'PORT');
  if (config.mllpPort) {
    let tls: { cert: Buffer; key: Buffer; ca: Buffer } | undefined;
    try {
      tls = config.mllpTls && { cert: readFileSync(config.mllpTls.certFile), key: readFileSync(config.mllpTls.keyFile), ca: readFileSync(config.mllpTls.caFile) };
    } catch (err) {
      throw new StartupError(`cannot read the MLLP TLS files (MLLP_TLS_CERT, MLLP_TLS_KEY, MLLP_TLS_CA): ${oneLine(err)}`);
    }
    const mllp = (state.mllp = createMllpServer({ receive: (m, facilities) => ingest.receiveHl7(m, undefined, facilities), peers: config.mllpPeers, tls, log: ingestLog, audit: { record: (e) => state.audit!.record(e), observer: { name: 'consortium-fhir-gateway', url: config.baseUrl } } }));
    await listen(mllp, config.mllpPort, 'MLLP_PORT');
  }
  log.debug({ uptimeMs: Math.round(process.uptime() * 1000) }, 'listening');
  const storeKind = store.db.kind === 'pg' ? 'postgres' : 'pglite';
  log.info(
    { url: config.baseUrl, port: config.port, store: storeKind, redis: config.redisUrl ? 'external' : 'private' },
    `FHIR gateway listening on port ${config.port}, FHIR base ${config.baseUrl}, store ${storeKind}`,
  );

  if (config.demo) {
    const demoLog = logger.child({ component: 'demo' });
    const stopped = (): boolean => state.stopDemo;
    state.demo = (async () => {
      await loadDemo(store.repo, stopped, demoLog);
      await loadDemoMessages(ingest, stopped, demoLog);
    })().catch((err) => {
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

function listen<S extends TcpServer>(server: S, port: number, variable: string): Promise<S> {
  return new Promise((resolve, reject) => {
    server.once('listening', () => resolve(server));
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new StartupError(err.code === 'EADDRINUSE' ? `port ${port} is already in use (set ${variable})` : `cannot listen on port ${port} (${variable}): ${err.message}`));
    });
    server.listen(port);
  });
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
  await state.websocket?.close();
  const server = state.server;
  if (server) {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
  }
  if (state.mllp) await new Promise<void>((resolve) => state.mllp!.close(() => resolve()));
  // Running exports stop at their next page (and say so in their status) before the store closes.
  await state.exports?.close();
  // Let the bundle in flight commit before the store closes under it.
  if (state.demo) await state.demo;
  state.stopRecovery?.();
  // With Redis already gone (a private one stopped with the process group), a worker cannot
  // report its jobs done and close() would wait for ever: close at once; they are picked up
  // again as stalled on the next start.
  const force = (): boolean => state.redisClient?.status !== 'ready';
  // A job in flight finishes (or its transaction rolls back and it is retried later).
  if (state.worker) await state.worker.close(force());
  if (state.queue) await state.queue.close();
  await state.forwarder?.stop();
  await state.notify?.stop(force());
  state.stopImportRecovery?.();
  if (state.importWorker) await state.importWorker.close(force());
  if (state.importQueue) await state.importQueue.close();
  // The last requests' audit events reach the queue (or the store) before the audit worker stops.
  await state.audit?.drain();
  state.audit?.close();
  if (state.auditWorker) await state.auditWorker.close(force());
  if (state.auditQueue) await state.auditQueue.close();
  if (state.redisClient) await state.redisClient.quit().catch(() => state.redisClient?.disconnect());
  if (state.store) await state.store.close();
  const child = state.redisChild ?? (await state.redisStart?.catch(() => undefined));
  if (child) await child.stop();
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].trim() || (err instanceof Error ? err.name : 'unknown error');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    const known = err instanceof ConfigError || err instanceof RedisNotFoundError || err instanceof StartupError;
    process.stderr.write(`${known ? (err as Error).message : `gateway failed to start: ${oneLine(err)}`}\n`);
    process.exit(1);
  });
}
