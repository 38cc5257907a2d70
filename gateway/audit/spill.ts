import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { IdentifiedAuditEvent as Event } from '../../workers/audit';

const CURRENT = 'spill.jsonl';
const REPLAYING = '.replaying.jsonl';

/**
 * The last resort for AuditEvents that neither the queue nor the store would take: JSON lines
 * appended and fsynced in a directory of this process (under DATA_DIR), written to the store
 * once it answers again. Operations run one at a time, so a replay never reads a file that an
 * append is still writing.
 */
export class AuditSpill {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string) {}

  append(events: Event[]): Promise<void> {
    return this.serial(async () => {
      await mkdir(this.dir, { recursive: true });
      const file = await open(join(this.dir, CURRENT), 'a');
      try {
        await file.write(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
        await file.datasync();
      } finally {
        await file.close();
      }
    });
  }

  /**
   * Writes every spilled event with `write` (in slices of `batch`), removing each file once all
   * of it is written; a failure leaves the file for the next replay. A line that does not parse
   * (torn by a crash mid-append) cannot be recovered and is counted as unreadable.
   */
  replay(write: (events: Event[]) => Promise<void>, batch: number): Promise<{ written: number; unreadable: number }> {
    return this.serial(async () => {
      let names: string[];
      try {
        names = await readdir(this.dir);
      } catch {
        return { written: 0, unreadable: 0 };
      }
      // A file whose replay failed keeps its name and is taken up again here.
      if (names.includes(CURRENT)) {
        const claimed = `${Date.now()}${REPLAYING}`;
        await rename(join(this.dir, CURRENT), join(this.dir, claimed));
        names.push(claimed);
      }
      let written = 0;
      let unreadable = 0;
      for (const name of names.filter((n) => n.endsWith(REPLAYING)).sort()) {
        const path = join(this.dir, name);
        const events: Event[] = [];
        for (const line of (await readFile(path, 'utf8')).split('\n')) {
          if (line.trim() === '') continue;
          try {
            events.push(JSON.parse(line) as Event);
          } catch {
            unreadable++;
          }
        }
        for (let i = 0; i < events.length; i += batch) await write(events.slice(i, i + batch));
        await unlink(path);
        written += events.length;
      }
      return { written, unreadable };
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
