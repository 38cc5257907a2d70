import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Repository } from '../../store/repository';
import { AUDIT_BATCH_SIZE, AUDIT_JOB_OPTIONS, writeAuditEvents, type AuditJob, type IdentifiedAuditEvent } from '../../workers/audit';
import { auditMetrics } from '../../workers/metrics';
import { withTimeout } from '../../workers/with-timeout';
import type { AuditSpill } from './spill';

type Event = IdentifiedAuditEvent;

export interface AuditRecorderDeps {
  queue: Queue<AuditJob>;
  /** Unrestricted: where events go when the queue cannot take them. */
  repo: Repository;
  log: Logger;
  /** Durable last resort when the store refuses too (DATA_DIR/audit-spill). */
  spill?: AuditSpill;
  /** How long a hand-over to the queue may take before the event is written directly. Default 1000 ms. */
  queueTimeoutMs?: number;
  /** How often spilled (or held) events are tried again. Default 5000 ms. */
  retryMs?: number;
  /** How long events are gathered into one job before it is handed over. Default GATHER_MS. */
  gatherMs?: number;
}

/** The most events one job carries. */
const MAX_GATHERED = 100;

/**
 * How long events are gathered. Every job costs the same to add, take and finish whatever it
 * carries, and at a clinician's pace a 10 ms job carried two or three events: the audit then
 * cost about 1.1 ms of CPU per request in the gateway's process, and 0.5 ms at 50 ms (worker
 * inside, sequential searches on this 2-core machine). The price is the window a process
 * killed hard loses, as Redis's own AOF (fsync every second) loses up to a second of jobs.
 */
const GATHER_MS = 50;

/**
 * Takes AuditEvents from the request path without ever making it wait or fail. The events of
 * a few milliseconds are gathered and queued as one job (the worker writes them), or, if Redis
 * cannot take it, written straight to the store. If the store refuses too, they are spilled to
 * disk and written to the store once it answers; only if the disk refuses as well are they held
 * in memory, and retried, until one of them takes them. Gathering is what keeps the audit from
 * costing more CPU than the read it records (see AuditJob); the price is that a process killed
 * hard loses up to `gatherMs` of events that were not handed over yet.
 */
export class AuditRecorder {
  private readonly inFlight = new Set<Promise<void>>();
  private gathered: Event[] = [];
  private gatherTimer: NodeJS.Timeout | undefined;
  private retrying: Event[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private queueDown = false;
  private storeDown = false;
  private spilled = false;

  constructor(private readonly deps: AuditRecorderDeps) {
    // Connection errors surface as failed hand-overs (warned once per outage); this only keeps them off stderr.
    deps.queue.on('error', (err) => deps.log.debug({ err: err.message }, 'audit queue connection error'));
  }

  /** Takes one event; returns at once. */
  record(event: Event): void {
    this.gathered.push(event);
    if (this.gathered.length >= MAX_GATHERED) this.handOver();
    else this.gatherTimer ??= setTimeout(() => this.handOver(), this.deps.gatherMs ?? GATHER_MS);
  }

  /** Resolves once every event recorded so far is queued, written or spilled (or held for a retry). */
  async drain(): Promise<void> {
    this.handOver();
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Stops retrying; events still waiting are logged by count (shutdown, after drain). */
  close(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    const pending = this.retrying.length + this.gathered.length;
    if (pending > 0) this.deps.log.error({ pending }, 'audit events neither written nor spilled at shutdown: lost');
  }

  private handOver(): void {
    clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    const events = this.gathered.splice(0);
    if (events.length > 0) this.track(this.deliver(events));
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async deliver(events: Event[]): Promise<void> {
    try {
      await this.enqueue(events);
      auditMetrics.queued.inc(events.length);
      if (this.queueDown) this.deps.log.info('audit queue reachable again');
      this.queueDown = false;
      return;
    } catch (err) {
      if (!this.queueDown) this.deps.log.warn({ err: (err as Error).message?.split('\n')[0] }, 'audit queue unreachable: writing audit events directly to the store');
      this.queueDown = true;
    }
    try {
      await writeAuditEvents(this.deps.repo, events);
      auditMetrics.fallback.inc(events.length);
      this.storeDown = false;
      return;
    } catch (err) {
      if (!this.storeDown) this.deps.log.error({ err: (err as Error).message?.split('\n')[0] }, 'audit events can be neither queued nor written to the store: spilling them to disk');
      this.storeDown = true;
    }
    try {
      if (!this.deps.spill) throw new Error('no spill directory');
      await this.deps.spill.append(events);
      auditMetrics.spilled.inc(events.length);
      this.spilled = true;
    } catch (err) {
      this.deps.log.error({ err: (err as Error).message?.split('\n')[0] }, 'audit events could not be spilled either; holding them in memory');
      this.retrying.push(...events);
      auditMetrics.pending.set(this.retrying.length);
    }
    this.scheduleRetry();
  }

  /** Writes what an earlier run (or an outage) spilled to disk; main calls it on start. */
  async replaySpill(): Promise<void> {
    if (!this.deps.spill) return;
    const { written, unreadable } = await this.deps.spill.replay(async (events) => {
      await writeAuditEvents(this.deps.repo, events);
      auditMetrics.fallback.inc(events.length);
    }, AUDIT_BATCH_SIZE);
    if (written > 0) this.deps.log.info({ written }, 'spilled audit events written to the store');
    if (unreadable > 0) this.deps.log.error({ unreadable }, 'spilled audit events torn by a crash could not be read');
  }

  private scheduleRetry(): void {
    this.retryTimer ??= setTimeout(() => this.retry(), this.deps.retryMs ?? 5000);
  }

  private enqueue(events: Event[]): Promise<unknown> {
    return withTimeout(this.deps.queue.add('write', { events }, AUDIT_JOB_OPTIONS), this.deps.queueTimeoutMs ?? 1000, 'audit queue did not answer in time');
  }

  private retry(): void {
    this.retryTimer = undefined;
    const events = this.retrying.splice(0);
    auditMetrics.pending.set(0);
    if (events.length > 0) this.track(this.deliver(events));
    if (!this.spilled) return;
    this.spilled = false;
    this.track(
      this.replaySpill().catch((err: Error) => {
        this.spilled = true;
        this.deps.log.warn({ err: err.message?.split('\n')[0] }, 'spilled audit events not written yet; retrying');
        this.scheduleRetry();
      }),
    );
  }
}
