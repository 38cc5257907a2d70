import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';

/**
 * Every queue key shares one hash tag, so the whole queue sits in one Redis Cluster slot, as
 * BullMQ needs for its multi-key scripts.
 */
export const QUEUE_PREFIX = '{fhirgw}';

export const INGEST_QUEUE = 'ingest';

/** One stored ingest message to apply; its content is in the ingest log, not in Redis. */
export interface IngestJob {
  messageId: string;
  /**
   * The message's patient key (null: it has none), so that the worker locks its patient without
   * reading the message first. Absent in jobs queued before the key was carried.
   */
  patientKey?: string | null;
}

/**
 * Transient failures (database or Redis away, deadlock) retry with backoff; bad data never
 * gets here as an exception (it is recorded as failed). The job id is the message id, so a
 * message queued twice (recovery sweep, `$replay`) is one job.
 */
export const INGEST_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 3600, count: 10000 },
  // The ingest log keeps every failure with its reason; a failed job left in Redis would only
  // stop the recovery sweep from queueing its message again under the same id.
  removeOnFail: true,
};

export const IMPORT_QUEUE = 'import';

/** Reading an import's file into chunks, or applying one chunk; the records are in the import log. */
export type ImportJobData = { kind: 'read'; importId: string } | { kind: 'chunk'; importId: string; seq: number };

/** Job ids name the work, so queueing it again (a resumed import) is one job. */
export const importJobId = (j: ImportJobData): string => (j.kind === 'read' ? `read-${j.importId}` : `chunk-${j.importId}-${j.seq}`);

/** Retried as ingest jobs are: bad rows are recorded, never thrown, so only transient failures get here. */
export function importQueue(connection: ConnectionOptions, prefix = QUEUE_PREFIX): Queue<ImportJobData> {
  return new Queue<ImportJobData>(IMPORT_QUEUE, { connection, prefix, defaultJobOptions: INGEST_JOB_OPTIONS });
}

export async function enqueueImportJobs(queue: Queue<ImportJobData>, jobs: ImportJobData[]): Promise<void> {
  if (jobs.length === 0) return;
  await queue.addBulk(jobs.map((data) => ({ name: data.kind, data, opts: { jobId: importJobId(data) } })));
}

/** Connection options BullMQ needs from a redis URL (workers block, so no per-request retry limit). */
export function redisConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/** `prefix` separates gateways (or test suites) sharing one Redis; keep its `{...}` hash tag. */
export function ingestQueue(connection: ConnectionOptions, prefix = QUEUE_PREFIX): Queue<IngestJob> {
  return new Queue<IngestJob>(INGEST_QUEUE, { connection, prefix, defaultJobOptions: INGEST_JOB_OPTIONS });
}

/** Queues messages, one job each, keyed by message id. */
export async function enqueueMessages(queue: Queue<IngestJob>, messages: { id: string; patientKey?: string | null }[]): Promise<void> {
  if (messages.length === 0) return;
  await queue.addBulk(messages.map((m) => ({ name: 'apply', data: { messageId: m.id, patientKey: m.patientKey ?? null }, opts: { jobId: m.id } })));
}
