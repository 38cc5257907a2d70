import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { QUEUE_PREFIX } from '../queues';

export const NOTIFY_QUEUE = 'notify';

/** One notification: Subscription `subscription` matched version `version` of `type/id`. */
export interface NotifyJob {
  subscription: string;
  type: string;
  id: string;
  version: number;
}

/**
 * The job id names the notification, so the dispatcher queueing a batch again (it stopped
 * between queueing and clearing the outbox) adds nothing while the first is waiting.
 * Completed jobs are removed at once: a dead letter queued again must get a new job (its last
 * attempt completes the job, having recorded the letter).
 */
export const notifyJobId = (j: NotifyJob): string => `${j.subscription}_${j.type}_${j.id}_${j.version}`;

/** Exponential backoff from 1 s: 8 attempts span about two minutes of a receiver being down. */
export const notifyJobOptions = (attempts: number, backoffMs = 1000): JobsOptions => ({
  attempts,
  backoff: { type: 'exponential', delay: backoffMs },
  removeOnComplete: true,
  // A job fails only when its last attempt could not even record the dead letter: keep it in Redis, for Bull Board and a retry.
  removeOnFail: false,
});

export function notifyQueue(connection: ConnectionOptions, prefix = QUEUE_PREFIX, attempts = 8, backoffMs?: number): Queue<NotifyJob> {
  return new Queue<NotifyJob>(NOTIFY_QUEUE, { connection, prefix, defaultJobOptions: notifyJobOptions(attempts, backoffMs) });
}

export async function enqueueNotifications(queue: Queue<NotifyJob>, jobs: NotifyJob[]): Promise<void> {
  if (jobs.length > 0) await queue.addBulk(jobs.map((data) => ({ name: 'notify', data, opts: { jobId: notifyJobId(data) } })));
}

/** The Redis channel a websocket-bound Subscription's notifications are published on (gateway/notify/websocket.ts). */
export const websocketChannel = (prefix: string, subscription: string): string => `${prefix}:notify:${subscription}`;
