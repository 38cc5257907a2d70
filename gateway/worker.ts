/**
 * Process entry for `npm run worker`: the ingest, import, audit and notification workers, for deployments that scale
 * them apart from the HTTP gateway (run the gateway with INGEST_WORKER=false, AUDIT_WORKER=false). Needs DATABASE_URL
 * and REDIS_URL: an embedded PGlite or a private Redis belongs to one gateway process.
 */
import { PatientIndex } from '../mpi';
import { attachWorkflows } from '../workflows/attach';
import { loadRules } from '../mpi/rules';
import { createValidator } from '../profiles/validator';
import { openStore } from '../store/open';
import { auditQueue, startAuditWorker } from '../workers/audit';
import { Forwarder } from '../workers/forward';
import { startImportRecovery, startImportWorker } from '../workers/import/worker';
import { startIngestWorker } from '../workers/ingest';
import { startNotifications } from '../workers/notify';
import { importQueue, ingestQueue, redisConnection } from '../workers/queues';
import { startRecovery } from '../workers/recovery';
import { loadSources } from '../workers/sources';
import { AuditRecorder } from './audit/recorder';
import { ConfigError, loadConfig } from './config';
import { logger } from './logger';

async function main(): Promise<void> {
  const config = loadConfig();
  logger.level = config.logLevel;
  if (!config.databaseUrl || !config.redisUrl) throw new ConfigError('npm run worker needs DATABASE_URL and REDIS_URL (the shared PostgreSQL and Redis)');
  const log = logger.child({ component: 'worker' });
  const sources = loadSources(config.sourcesFile);
  const mpi = new PatientIndex(loadRules(config.mpiRulesFile));
  const store = await openStore({ databaseUrl: config.databaseUrl, maxConnections: config.pgMaxConnections }, { validate: createValidator(), access: { mrnSystems: sources.mrnSystems } });
  mpi.attach(store.repo);
  attachWorkflows(store.repo, { subscriptionEndpoints: config.notify.endpoints });
  const connection = redisConnection(config.redisUrl);
  const queue = ingestQueue(connection, config.queuePrefix);
  const worker = startIngestWorker({ repo: store.repo, sources, log, mpi }, { connection, concurrency: config.workerConcurrency, prefix: config.queuePrefix });
  const stopRecovery = await startRecovery(store.db, queue, log, { intervalMs: 30_000, graceMs: 60_000 });
  const imports = importQueue(connection, config.queuePrefix);
  const importWorker = startImportWorker({ repo: store.repo, sources, log, mpi, queue: imports }, { connection, concurrency: config.importConcurrency, prefix: config.queuePrefix });
  const stopImportRecovery = await startImportRecovery({ repo: store.repo, queue: imports }, log);
  // Any number of processes may be configured to forward: a lease in the database lets one send at a time.
  const forwarder = config.forward ? new Forwarder(store.db, config.forward, logger.child({ component: 'forward' })) : undefined;
  await forwarder?.start();
  const auditLog = logger.child({ component: 'audit' });
  const auditWorker = startAuditWorker({ repo: store.repo, log: auditLog }, { connection, prefix: config.queuePrefix });
  // The notifications' AuditEvents, handed over as the gateway's are (no disk spill here: the store, then memory, is the fallback).
  const audits = auditQueue(connection, config.queuePrefix);
  const audit = new AuditRecorder({ queue: audits, repo: store.repo, log: auditLog });
  const notify = startNotifications(store.db, store.repo, logger.child({ component: 'notify' }), { connection, prefix: config.queuePrefix, attempts: config.notify.attempts, mpi, audit });
  log.info({ concurrency: config.workerConcurrency }, 'ingest, import, audit and notification workers running');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'stopping: finishing the jobs in flight');
    stopRecovery();
    stopImportRecovery();
    Promise.all([worker.close(), importWorker.close(), forwarder?.stop(), notify.stop().then(() => audit.drain())])
      .then(() => {
        audit.close();
        return Promise.all([auditWorker.close(), queue.close(), imports.close(), audits.close()]);
      })
      .then(() => store.close())
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : `worker failed to start: ${(err as Error).message?.split('\n')[0]}`}\n`);
  process.exit(1);
});
