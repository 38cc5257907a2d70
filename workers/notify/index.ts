import type { ConnectionOptions, Queue } from 'bullmq';
import Redis from 'ioredis';
import type { Logger } from 'pino';
import type { PatientIndex } from '../../mpi';
import type { Database } from '../../store/db/database';
import type { Repository } from '../../store/repository';
import { auditQueue } from '../audit';
import { QUEUE_PREFIX } from '../queues';
import { auditSink } from './audit';
import { startNotifyWorker } from './delivery';
import { DEFAULT_DISPATCHER, Dispatcher, type DispatcherOptions } from './dispatcher';
import { notifyQueue, type NotifyJob } from './queue';

export interface NotificationOptions {
  connection: ConnectionOptions;
  prefix?: string;
  /** Delivery attempts before a dead letter (NOTIFY_ATTEMPTS). */
  attempts?: number;
  /** First retry delay, doubling after (default 1 s). */
  backoffMs?: number;
  concurrency?: number;
  dispatcher?: Omit<DispatcherOptions, 'mpi'>;
  /** The patient index, for criteria that name a person (see DispatcherOptions.mpi). */
  mpi?: PatientIndex;
}

/**
 * Notifications in this process: the dispatcher (which runs in one process at a time, by
 * lease) and a delivery worker (any number run), whose AuditEvents go to the audit queue
 * (an audit worker runs in the gateway or in `npm run worker`). `repo` must be unrestricted.
 */
export function startNotifications(db: Database, repo: Repository, log: Logger, opts: NotificationOptions): { queue: Queue<NotifyJob>; stop(): Promise<void> } {
  const prefix = opts.prefix ?? QUEUE_PREFIX;
  const queue = notifyQueue(opts.connection, prefix, opts.attempts, opts.backoffMs);
  const dispatcher = new Dispatcher(db, repo, queue, log, { ...(opts.dispatcher ?? DEFAULT_DISPATCHER), mpi: opts.mpi });
  const redis = new Redis(opts.connection as never);
  const audits = auditQueue(opts.connection, prefix);
  const worker = startNotifyWorker({ repo, redis, log, audit: auditSink(audits, repo, log) }, { connection: opts.connection, prefix, concurrency: opts.concurrency });
  dispatcher.start();
  return {
    queue,
    async stop() {
      await dispatcher.stop();
      await worker.close();
      await queue.close();
      await audits.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
