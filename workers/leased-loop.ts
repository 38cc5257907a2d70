import { randomUUID } from 'node:crypto';
import type { Database } from '../store/db/database';
import { releaseLease, type LeasedState } from '../store/lease';

/**
 * A loop that one process at a time runs (the lease in `table`, store/lease.ts): the upstream
 * forwarder and the notification dispatcher. `stop()` cuts the current pause short, waits for
 * the loop to end and gives the lease up, so another process takes over at once.
 */
export abstract class LeasedLoop {
  protected readonly owner = randomUUID();
  protected stopped = false;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(
    protected readonly db: Database,
    private readonly table: LeasedState,
  ) {}

  /** The loop itself: runs until `stopped`, pausing with `sleep`. */
  protected abstract run(): Promise<void>;

  protected begin(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await releaseLease(this.db, this.table, this.owner).catch(() => undefined);
  }

  protected sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
