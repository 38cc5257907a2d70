import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { SqlExecutor } from '../../store/db/database';
import { messageLog, type NewMessage } from '../../store/messages';
import { GroupCommit } from '../../workers/group-commit';
import { enqueueMessages, type IngestJob } from '../../workers/queues';

/**
 * Stores received records and queues them, with group commit (workers/group-commit.ts): under
 * load one INSERT and commit serve dozens of senders. `store` resolves only once its records
 * are committed; that is when the sender may be acknowledged. Queueing follows, off the
 * sender's path: if Redis is away, the recovery sweep queues the records later.
 */
export class ReceiptWriter {
  private readonly commits: GroupCommit<NewMessage[]>;

  constructor(db: SqlExecutor, queue: Queue<IngestJob>, log: Logger) {
    this.commits = new GroupCommit<NewMessage[]>((groups) => messageLog.insert(db, groups.flat()), {
      maxInFlight: 2,
      maxBatch: 1000,
      after: async (groups) => {
        const received = groups.flat().filter((m) => m.state === 'received');
        await enqueueMessages(queue, received).catch((err: Error) => {
          log.warn({ messages: received.length, err: err.message }, 'queueing received messages failed; the recovery sweep will queue them');
        });
      },
    });
  }

  store(messages: NewMessage[]): Promise<void> {
    return this.commits.add(messages);
  }
}
