import { Worker, type ConnectionOptions, type Job, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import { importLog } from '../../store/imports';
import { enqueueImportJobs, IMPORT_QUEUE, QUEUE_PREFIX, type ImportJobData } from '../queues';
import { applyChunk, type ImportDeps } from './apply';
import { DEFAULT_READER, readImport, type ReaderOptions } from './reader';

export interface ImportWorkerOptions {
  connection: ConnectionOptions;
  concurrency: number;
  prefix?: string;
  reader?: ReaderOptions;
}

/**
 * The import worker: reads files into chunks and applies chunks, in the gateway, in
 * `npm run worker` processes or in the import CLI. A reader killed mid-file leaves its job
 * stalled; BullMQ hands it to a live worker once its lock lapses, and it resumes at its
 * checkpoint, however often that happens (so no limit on stalls).
 */
export function startImportWorker(deps: ImportDeps & { queue: Queue<ImportJobData> }, opts: ImportWorkerOptions): Worker<ImportJobData> {
  const worker = new Worker<ImportJobData>(IMPORT_QUEUE, (job: Job<ImportJobData>) => runImportJob(deps, job.data, opts.reader), {
    connection: opts.connection,
    prefix: opts.prefix ?? QUEUE_PREFIX,
    concurrency: opts.concurrency,
    lockDuration: 10_000,
    stalledInterval: 5_000,
    maxStalledCount: Number.MAX_SAFE_INTEGER,
  });
  worker.on('failed', (job, err) => {
    if (job) deps.log.warn({ importId: job.data.importId, kind: job.data.kind, attempt: job.attemptsMade, err: err.message.split('\n')[0] }, 'import job failed');
  });
  worker.on('error', (err) => deps.log.warn({ err: err.message }, 'import worker error'));
  return worker;
}

export async function runImportJob(deps: ImportDeps & { queue: Queue<ImportJobData> }, data: ImportJobData, reader: ReaderOptions = DEFAULT_READER): Promise<void> {
  const job = await importLog.get(deps.repo.executor, data.importId);
  if (!job || (job.state !== 'reading' && job.state !== 'applying')) return;
  if (data.kind === 'read') await readImport(deps, job, reader);
  else if (await applyChunk(deps, job, data.seq)) deps.log.info({ importId: job.id }, 'import done');
}

/**
 * Queues again what every unfinished import still needs (its reader, its chunks not applied):
 * their jobs may have been lost with Redis, or never queued by a process killed in between.
 * Job ids name the work, so what is still queued is not queued twice. Returns the imports resumed.
 */
export async function resumeImports(deps: Pick<ImportDeps, 'repo'> & { queue: Queue<ImportJobData> }, only?: string): Promise<number> {
  const db = deps.repo.executor;
  const jobs = (await importLog.unfinished(db)).filter((j) => only === undefined || j.id === only);
  for (const job of jobs) {
    const pending = await importLog.pendingChunks(db, job.id);
    await enqueueImportJobs(deps.queue, [
      ...(job.readComplete ? [] : [{ kind: 'read' as const, importId: job.id }]),
      ...pending.map((seq) => ({ kind: 'chunk' as const, importId: job.id, seq })),
    ]);
    if (job.readComplete && pending.length === 0) await importLog.finishIfComplete(db, job.id);
  }
  return jobs.length;
}

/**
 * resumeImports at once, then every `intervalMs`: a chunk whose job gave up (the database away
 * for longer than its retries) is queued again rather than left pending for good. Returns stop.
 */
export async function startImportRecovery(deps: Pick<ImportDeps, 'repo'> & { queue: Queue<ImportJobData> }, log: Logger, intervalMs = 60_000): Promise<() => void> {
  const resumed = await resumeImports(deps);
  if (resumed > 0) log.info({ imports: resumed }, 'resumed unfinished imports');
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    resumeImports(deps)
      .catch((err: Error) => log.warn({ err: err.message }, 'import recovery sweep failed; retrying at the next interval'))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
