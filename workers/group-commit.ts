/**
 * Group commit: what callers hand over while a write is in flight waits for the next write
 * and shares it, so under load one transaction serves many callers, while an idle gateway
 * still writes each at once (no timer). A caller's promise settles once its item is written.
 */
export interface GroupCommitOptions<T> {
  /** Writes at once; more than one keeps the database busy while a commit waits on disk. */
  maxInFlight: number;
  /** The most items one write takes. */
  maxBatch: number;
  /**
   * Runs after a write's callers are told, still holding the write's slot, so that work the
   * callers need not wait for (queueing what was stored) keeps pace with the writes.
   */
  after?: (items: T[]) => Promise<void>;
}

/**
 * `write` resolves to one entry per item: undefined when it was written, or the error that item
 * (alone) failed with; throwing fails the whole batch.
 */
export type BatchWrite<T> = (items: T[]) => Promise<(unknown | undefined)[] | void>;

interface Waiting<T> {
  item: T;
  resolve(): void;
  reject(err: unknown): void;
}

export class GroupCommit<T> {
  private waiting: Waiting<T>[] = [];
  private inFlight = 0;

  constructor(
    private readonly write: BatchWrite<T>,
    private readonly opts: GroupCommitOptions<T>,
  ) {}

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.opts.maxBatch);
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async flush(batch: Waiting<T>[]): Promise<void> {
    const items = batch.map((w) => w.item);
    let errors: (unknown | undefined)[] | void;
    try {
      errors = await this.write(items);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => (errors?.[i] === undefined ? w.resolve() : w.reject(errors[i])));
    // `after` reports its own failures; one escaping here would only be unhandled.
    await this.opts.after?.(items).catch(() => undefined);
  }
}
