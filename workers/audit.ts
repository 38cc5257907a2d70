import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import { Queue, Worker, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Repository } from '../store/repository';
import { auditMetrics } from './metrics';
import { QUEUE_PREFIX } from './queues';

export const AUDIT_QUEUE = 'audit';

/** One AuditEvent to write, id already assigned (the job id is the event id). */
export interface AuditJob {
  event: AuditEvent & { id: string };
}

/**
 * An audit record is never given up on: a job that keeps failing stays in Redis as failed (for
 * Bull Board and a retry) instead of being removed.
 */
export const AUDIT_JOB_OPTIONS: JobsOptions = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: true,
  removeOnFail: false,
};

/** The most AuditEvents one transaction writes. */
export const AUDIT_BATCH_SIZE = 200;

/** Marks the store's writes of AuditEvents (see Written.origin). */
const ORIGIN = 'audit';

/**
 * Producers fail fast when Redis is away (no offline queue), so the request path's hand-over
 * falls back to the store at once instead of waiting on a reconnect.
 */
export function auditQueue(connection: ConnectionOptions, prefix = QUEUE_PREFIX): Queue<AuditJob> {
  return new Queue<AuditJob>(AUDIT_QUEUE, { connection: { ...connection, enableOfflineQueue: false } as ConnectionOptions, prefix, defaultJobOptions: AUDIT_JOB_OPTIONS });
}

/**
 * Writes AuditEvents in one transaction. Each is an upsert under its own id, so an event that
 * reached the store twice (queued after a timed-out hand-over that also wrote it directly) is
 * one resource, not two. `repo` must be unrestricted: audit writes belong to no facility.
 */
export async function writeAuditEvents(repo: Repository, events: AuditJob['event'][]): Promise<void> {
  if (events.length === 0) return;
  await withTreatmentPurpose(repo, events);
  await repo.applyWrites(events.map((e) => ({ method: 'update' as const, type: 'AuditEvent', id: e.id, resource: e as Resource, origin: ORIGIN })));
  auditMetrics.written.inc(events.length);
}

const TREATMENT = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' };

/**
 * Names the treatment relationship (store/access.ts) as the purpose of a facility's access to a
 * patient it treats under an open referral: on the requestor agent, as break-glass is, so the
 * office sees why an opted-out person's record was opened. Done here, off the request path:
 * one lookup per facility in the batch.
 */
async function withTreatmentPurpose(repo: Repository, events: AuditJob['event'][]): Promise<void> {
  const byFacility = new Map<string, AuditJob['event'][]>();
  for (const event of events) {
    const requestor = event.agent.find((a) => a.requestor);
    if (!requestor || requestor.purposeOfUse) continue;
    const facility = event.agent.find((a) => a.type?.coding?.some((c) => c.code === 'PROV'))?.who?.reference?.replace(/^Organization\//, '');
    if (facility && patientsOf(event).length > 0) byFacility.set(facility, [...(byFacility.get(facility) ?? []), event]);
  }
  for (const [facility, group] of byFacility) {
    const tasks = await repo.treatingTasks(facility, [...new Set(group.flatMap(patientsOf))]);
    for (const event of group) {
      const task = patientsOf(event).map((p) => tasks.get(p)).find((t) => t !== undefined);
      if (task) event.agent.find((a) => a.requestor)!.purposeOfUse = [{ coding: [TREATMENT], text: `open referral Task/${task}` }];
    }
  }
}

function patientsOf(event: AuditEvent): string[] {
  return (event.entity ?? []).filter((e) => e.role?.code === '1' && e.what?.reference?.startsWith('Patient/')).map((e) => e.what!.reference!.slice(8));
}

export interface AuditWorkerOptions {
  connection: ConnectionOptions;
  prefix?: string;
  batchSize?: number;
  /** How long a partial batch waits for more jobs before it is written. */
  lingerMs?: number;
}

/**
 * The BullMQ worker: up to `batchSize` jobs are active at once, and the events they carry are
 * written together. If a batch fails, its events are written one at a time, so one event the
 * store refuses fails (and retries) alone.
 */
export function startAuditWorker(deps: { repo: Repository; log: Logger }, opts: AuditWorkerOptions): Worker<AuditJob> {
  const batcher = new Batcher(deps.repo, opts.batchSize ?? AUDIT_BATCH_SIZE, opts.lingerMs ?? 20);
  const worker = new Worker<AuditJob>(AUDIT_QUEUE, (job) => batcher.add(job.data.event), {
    connection: opts.connection,
    prefix: opts.prefix ?? QUEUE_PREFIX,
    concurrency: opts.batchSize ?? AUDIT_BATCH_SIZE,
  });
  worker.on('failed', (job, err) => deps.log.warn({ auditEvent: job?.id, attempt: job?.attemptsMade, err: err.message.split('\n')[0] }, 'audit job failed'));
  worker.on('error', (err) => deps.log.warn({ err: err.message }, 'audit worker error'));
  return worker;
}

interface Waiting {
  event: AuditJob['event'];
  resolve(): void;
  reject(err: unknown): void;
}

class Batcher {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly size: number,
    private readonly lingerMs: number,
  ) {}

  add(event: AuditJob['event']): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ event, resolve, reject });
      if (this.waiting.length >= this.size) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting.splice(0, this.size);
    if (batch.length === 0) return;
    writeAuditEvents(this.repo, batch.map((w) => w.event)).then(
      () => batch.forEach((w) => w.resolve()),
      async () => {
        for (const w of batch) await writeAuditEvents(this.repo, [w.event]).then(w.resolve, w.reject);
      },
    );
    if (this.waiting.length > 0) this.timer = setTimeout(() => this.flush(), this.lingerMs);
  }
}
