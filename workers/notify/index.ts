import type { ConnectionOptions, Queue } from 'bullmq';
import Redis from 'ioredis';
import type { Logger } from 'pino';
import type { PatientIndex } from '../../mpi';
import type { Database } from '../../store/db/database';
import type { Repository } from '../../store/repository';
import { QUEUE_PREFIX } from '../queues';
import type { AuditRecord } from './audit';
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
  /** The process's AuditRecorder: each delivery is audited. */
  audit: AuditRecord;
}

/**
 * Notifications in this process: the dispatcher (which runs in one process at a time, by
 * lease) and a delivery worker (any number run), whose AuditEvents go to `opts.audit`.
 * `repo` must be unrestricted.
 */
export function startNotifications(db: Database, repo: Repository, log: Logger, opts: NotificationOptions): { queue: Queue<NotifyJob>; stop(force?: boolean): Promise<void> } {
  const prefix = opts.prefix ?? QUEUE_PREFIX;
  const queue = notifyQueue(opts.connection, prefix, opts.attempts, opts.backoffMs);
  const dispatcher = new Dispatcher(db, repo, queue, log, { ...(opts.dispatcher ?? DEFAULT_DISPATCHER), mpi: opts.mpi });
  const redis = new Redis(opts.connection as never);
  const worker = startNotifyWorker({ repo, redis, log, audit: opts.audit }, { connection: opts.connection, prefix, concurrency: opts.concurrency });
  dispatcher.start();
  return {
    queue,
    /** `force`: Redis is gone, so the worker cannot report jobs done; close without waiting on them. */
    async stop(force = false) {
      await dispatcher.stop();
      await worker.close(force);
      await queue.close();
      // Nothing is left to publish once the worker has closed; quit() would wait on a Redis already gone.
      redis.disconnect();
    },
  };
}
