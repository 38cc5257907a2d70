import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { SqlExecutor } from '../../store/db/database';
import { messageLog, type NewMessage } from '../../store/messages';
import { enqueueMessages, type IngestJob } from '../../workers/queues';

interface Waiting {
  messages: NewMessage[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Stores received records and queues them, with group commit: receipts that arrive while a
 * write is in flight share the next INSERT and commit, so under load one commit serves
 * dozens of senders and an idle gateway still writes each at once. A promise resolves only
 * once its records are committed; that is when the sender may be acknowledged.
 */
export class ReceiptWriter {
  private waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(
    private readonly db: SqlExecutor,
    private readonly queue: Queue<IngestJob>,
    private readonly log: Logger,
    /** Concurrent INSERTs; more than one keeps the pool busy while a commit waits on disk. */
    private readonly maxInFlight = 2,
  ) {}

  store(messages: NewMessage[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ messages, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async flush(batch: Waiting[]): Promise<void> {
    const messages = batch.flatMap((w) => w.messages);
    try {
      await messageLog.insert(this.db, messages);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    for (const w of batch) w.resolve();
    // Durable already: if Redis is away, the recovery sweep queues these later.
    const received = messages.filter((m) => m.state === 'received');
    await enqueueMessages(this.queue, received).catch((err: Error) => {
      this.log.warn({ messages: received.length, err: err.message }, 'queueing received messages failed; the recovery sweep will queue them');
    });
  }
}
