/**
 * Reads an import's file into chunks. A chunk and the checkpoint past it commit together, and
 * its job is queued only after: killed at any point, the reader starts again after the last
 * chunk it committed (records before the checkpoint are read past, not written again), and a
 * chunk whose job was lost is queued by `resumeImports`. It waits while the workers are more
 * than a few chunks behind, so neither the database nor the queue fills up with a whole file.
 */
import { createReadStream } from 'node:fs';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { outcome } from '../../store/errors';
import { failureOutcome } from '../ingest';
import { importLog, type ImportJob, type ImportRecord } from '../../store/imports';
import type { Repository } from '../../store/repository';
import { enqueueImportJobs, type ImportJobData } from '../queues';
import { readRecords } from './records';

export interface ReaderOptions {
  /** Records per chunk (per job, per transaction). */
  chunkSize: number;
  /** Chunks written and not yet applied before the reader waits. */
  maxBacklog: number;
}

export const DEFAULT_READER: ReaderOptions = { chunkSize: 500, maxBacklog: 8 };

interface ReaderDeps {
  repo: Repository;
  queue: Queue<ImportJobData>;
  log: Logger;
}

export async function readImport(deps: ReaderDeps, job: ImportJob, opts: ReaderOptions = DEFAULT_READER): Promise<void> {
  if (job.readComplete) return;
  const db = deps.repo.executor;
  let seq = await importLog.nextSeq(db, job.id);
  let skip = job.readRecords;
  let batch: ImportRecord[] = [];
  const flush = async (offset: number): Promise<boolean> => {
    for (;;) {
      const backlog = await importLog.backlog(db, job.id);
      if (backlog === undefined) return false; // cancelled
      if (backlog < opts.maxBacklog) break;
      await sleep(50);
    }
    const added = await deps.repo.transaction((tx) => importLog.addChunk(tx.executor, job.id, seq, batch, offset));
    if (!added) return false; // cancelled
    await enqueueImportJobs(deps.queue, [{ kind: 'chunk', importId: job.id, seq }]);
    seq++;
    batch = [];
    return true;
  };
  const file = createReadStream(job.filePath);
  try {
    for await (const { record, offset } of readRecords(job.format, file, job.charset)) {
      if (skip > 0) {
        skip--;
        continue;
      }
      batch.push(record);
      if (batch.length >= opts.chunkSize && !(await flush(offset))) return;
    }
    if (batch.length > 0 && !(await flush(job.fileBytes))) return;
  } catch (err) {
    const reason = failureOutcome(err) ?? fileOutcome(err);
    if (!reason) throw err;
    // The file itself is bad (a header it cannot read, a CSV quote that never closes): what was read stays imported.
    await importLog.fail(db, job.id, reason);
    deps.log.warn({ importId: job.id, reason: reason.issue[0]?.diagnostics }, 'import stopped: the file cannot be read on');
    return;
  } finally {
    file.destroy();
  }
  await importLog.completeRead(db, job.id);
  await importLog.finishIfComplete(db, job.id);
}

/** The file is gone or unreadable: no retry brings it back. */
function fileOutcome(err: unknown) {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return outcome([{ severity: 'error', code: 'not-found', diagnostics: 'The import file no longer exists' }]);
  if (code === 'EACCES' || code === 'EISDIR') return outcome([{ severity: 'error', code: 'exception', diagnostics: `The import file cannot be read (${code})` }]);
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
