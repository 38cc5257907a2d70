import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import { Queue, Worker, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Repository } from '../store/repository';
import { auditMetrics } from './metrics';
import { QUEUE_PREFIX } from './queues';

export const AUDIT_QUEUE = 'audit';

/** An AuditEvent as the recorder hands it over: its id is assigned, so a second write of it is an upsert. */
export type IdentifiedAuditEvent = AuditEvent & { id: string };

/**
 * AuditEvents handed over together: one BullMQ job costs about 0.2 ms of CPU to add and 0.5 ms
 * to work, many times what writing an event does, so the recorder gathers the events of a few
 * milliseconds into one job.
 */
export interface AuditJob {
  events: IdentifiedAuditEvent[];
  /** A job queued by a gateway from before the batching carries one event (still in a persisted Redis after an upgrade). */
  event?: IdentifiedAuditEvent;
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
export async function writeAuditEvents(repo: Repository, events: IdentifiedAuditEvent[]): Promise<void> {
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
async function withTreatmentPurpose(repo: Repository, events: IdentifiedAuditEvent[]): Promise<void> {
  const byFacility = new Map<string, IdentifiedAuditEvent[]>();
  for (const event of events) {
    const requestor = event.agent.find((a) => a.requestor);
    if (!requestor || requestor.purposeOfUse) continue;
    const facility = event.agent.find((a) => a.type?.coding?.some((c) => c.code === 'PROV'))?.who?.reference?.replace(/^Organization\//, '');
    if (!facility || patientsOf(event).length === 0) continue;
    const group = byFacility.get(facility);
    if (group) group.push(event);
    else byFacility.set(facility, [event]);
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
  /** The most events one transaction writes. */
  batchSize?: number;
  /** How long a partial batch waits for more jobs before it is written. */
  lingerMs?: number;
}

/** Jobs worked at once, whose events are written together. */
const AUDIT_WORKER_CONCURRENCY = 50;

/**
 * The BullMQ worker: the events of the jobs active at once are written together, up to
 * `batchSize` a transaction. If a batch fails, each job's events are written one at a time, so
 * an event the store refuses fails (and retries) alone: its job keeps only the refused ones.
 */
export function startAuditWorker(deps: { repo: Repository; log: Logger }, opts: AuditWorkerOptions): Worker<AuditJob> {
  const batcher = new Batcher(deps.repo, opts.batchSize ?? AUDIT_BATCH_SIZE, opts.lingerMs ?? 20);
  const worker = new Worker<AuditJob>(AUDIT_QUEUE, (job) => batcher.add(job), {
    connection: opts.connection,
    prefix: opts.prefix ?? QUEUE_PREFIX,
    concurrency: AUDIT_WORKER_CONCURRENCY,
  });
  worker.on('failed', (job, err) => deps.log.warn({ auditJob: job?.id, events: job?.data.events?.length, attempt: job?.attemptsMade, err: err.message.split('\n')[0] }, 'audit job failed'));
  worker.on('error', (err) => deps.log.warn({ err: err.message }, 'audit worker error'));
  return worker;
}

function eventsOf(job: Job<AuditJob>): IdentifiedAuditEvent[] {
  return job.data.events ?? (job.data.event ? [job.data.event] : []);
}

interface Waiting {
  job: Job<AuditJob>;
  resolve(): void;
  reject(err: unknown): void;
}

class Batcher {
  private waiting: Waiting[] = [];
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly size: number,
    private readonly lingerMs: number,
  ) {}

  add(job: Job<AuditJob>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.count += eventsOf(job).length;
      if (this.count >= this.size) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch: Waiting[] = [];
    let events = 0;
    // At least one job, however many events it carries; then whole jobs up to the size.
    while (this.waiting.length > 0 && (batch.length === 0 || events + eventsOf(this.waiting[0].job).length <= this.size)) {
      const w = this.waiting.shift()!;
      batch.push(w);
      events += eventsOf(w.job).length;
    }
    this.count -= events;
    if (batch.length === 0) return;
    writeAuditEvents(this.repo, batch.flatMap((w) => eventsOf(w.job))).then(
      () => batch.forEach((w) => w.resolve()),
      async () => {
        for (const w of batch) await this.writeAlone(w.job).then(w.resolve, w.reject);
      },
    );
    if (this.waiting.length > 0) this.timer = setTimeout(() => this.flush(), this.lingerMs);
  }

  /** A job's events one transaction each; the job fails with (and keeps) only those refused. */
  private async writeAlone(job: Job<AuditJob>): Promise<void> {
    const refused: IdentifiedAuditEvent[] = [];
    let reason: unknown;
    for (const event of eventsOf(job)) {
      await writeAuditEvents(this.repo, [event]).catch((err: unknown) => {
        refused.push(event);
        reason = err;
      });
    }
    if (refused.length === 0) return;
    await job.updateData({ events: refused });
    throw reason;
  }
}
