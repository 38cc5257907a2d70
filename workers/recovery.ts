import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { SqlExecutor } from '../store/db/database';
import { messageLog } from '../store/messages';
import { enqueueMessages, type IngestJob } from './queues';

export interface RecoveryOptions {
  /** How often to look for stranded messages. */
  intervalMs: number;
  /** A message still waiting after this long has probably lost its job (Redis flushed or away). */
  graceMs: number;
}

/**
 * Queues again every received-but-unfinished message: once at start (with no grace: whatever
 * Redis held may be gone), then periodically for messages older than the grace period. Jobs
 * are keyed by message id, so a message whose job still exists is not queued twice.
 * Returns a function that stops the sweep.
 */
export async function startRecovery(db: SqlExecutor, queue: Queue<IngestJob>, log: Logger, opts: RecoveryOptions): Promise<() => void> {
  await requeueUnfinished(db, queue, new Date(), log);
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    requeueUnfinished(db, queue, new Date(Date.now() - opts.graceMs), log)
      .catch((err: Error) => log.warn({ err: err.message }, 'recovery sweep failed; retrying at the next interval'))
      .finally(() => (running = false));
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export async function requeueUnfinished(db: SqlExecutor, queue: Queue<IngestJob>, olderThan: Date, log: Logger): Promise<number> {
  let total = 0;
  let after = 0;
  for (;;) {
    const page = await messageLog.unfinished(db, olderThan, 1000, after);
    if (page.length === 0) break;
    await enqueueMessages(queue, page);
    total += page.length;
    after = page[page.length - 1].seq;
  }
  if (total > 0) log.info({ messages: total }, 'queued unfinished messages again');
  return total;
}
