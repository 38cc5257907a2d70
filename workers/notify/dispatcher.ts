/**
 * Matching writes to Subscriptions: one dispatcher at a time (a lease in the database) reads
 * the notification outbox in write order, asks the store which of the written resources each
 * active Subscription's criteria select, as its author would see them, and queues one
 * notification job per match. Outbox rows go only once their jobs are in Redis, so a crash
 * in between queues them again (the job id makes that one job): at least once.
 *
 * Criteria are evaluated by the store's own search (`criteria&_id=...`), not by a second
 * matcher, against each resource as it stands when the dispatcher reads it: a version
 * superseded within the same few milliseconds is judged by its successor.
 */
import type { Subscription } from '@medplum/fhirtypes';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { PatientIndex } from '../../mpi';
import { expandPersons } from '../../mpi/person-search';
import type { Database } from '../../store/db/database';
import { FhirError } from '../../store/errors';
import { notifyLog, type NotifyChange } from '../../store/notify-log';
import type { Repository } from '../../store/repository';
import { LeasedLoop } from '../leased-loop';
import { notifyMetrics } from '../metrics';
import { enqueueNotifications, type NotifyJob } from './queue';
import { setStatus } from './status';
import { accessOf, watchOf, type Watch } from './subscription';

export interface DispatcherOptions {
  batch: number;
  /** The patient index, when criteria name a person (`subject:mdm=Patient/x`, or a golden Patient): expanded at each match, so links made since count. */
  mpi?: PatientIndex;
  /** Wait between looks when the outbox is empty: the floor of the notification latency. */
  idleMs: number;
  retryMs: number;
}

export const DEFAULT_DISPATCHER: DispatcherOptions = { batch: 500, idleMs: 100, retryMs: 1000 };

const LEASE_SECONDS = 30;
/** How often a dispatcher without the lease asks for it. */
const STANDBY_MS = 1000;
/** Subscriptions read per refresh; a consortium has tens. */
const MAX_SUBSCRIPTIONS = 1000;
/** Ids per matching search. */
const ID_CHUNK = 200;

export class Dispatcher extends LeasedLoop {
  private watches?: Watch[];
  private renewAt = 0;
  private holding = false;

  /** `repo` unrestricted: it reads every Subscription and sets their status. */
  constructor(
    db: Database,
    private readonly repo: Repository,
    private readonly queue: Queue<NotifyJob>,
    private readonly log: Logger,
    private readonly opts: DispatcherOptions = DEFAULT_DISPATCHER,
  ) {
    super(db, 'notify_state');
  }

  start(): void {
    this.begin();
  }

  /** One look at the outbox; how many changes it took. */
  async tick(): Promise<number> {
    // The holder renews a third of the way through the lease, not on every look (an idle gateway
    // would otherwise write it ten times a second). A process standing by asks every second: a
    // refused take writes nothing, and a lease given up at a clean stop is taken within a second.
    if (Date.now() >= this.renewAt) {
      this.holding = await notifyLog.lease(this.db, this.owner, LEASE_SECONDS);
      this.renewAt = Date.now() + (this.holding ? (LEASE_SECONDS * 1000) / 3 : STANDBY_MS);
    }
    if (!this.holding) {
      this.watches = undefined; // another dispatcher runs; whatever this one knew may go stale
      return 0;
    }
    if (!this.watches) await this.refresh();
    const changes = await notifyLog.pending(this.db, this.opts.batch);
    if (changes.length === 0) return 0;
    if (changes.some((c) => c.type === 'Subscription')) await this.refresh();
    const jobs = await this.match(changes.filter((c) => c.type !== 'Subscription'));
    await enqueueNotifications(this.queue, jobs);
    notifyMetrics.queued.inc(jobs.length);
    await notifyLog.done(this.db, changes.map((c) => c.seq));
    return changes.length;
  }

  protected async run(): Promise<void> {
    while (!this.stopped) {
      let pause = this.opts.idleMs;
      try {
        if ((await this.tick()) === this.opts.batch) pause = 0;
      } catch (err) {
        this.log.warn({ err: (err as Error).message?.split('\n')[0] }, 'dispatching notifications failed; retrying');
        this.watches = undefined;
        this.renewAt = 0;
        pause = this.opts.retryMs;
      }
      if (pause > 0) await this.sleep(pause);
    }
  }

  /**
   * Reads the live Subscriptions; captures the types they watch; then sets the requested ones
   * active and queues their dead letters again (a subscriber asks for those by requesting).
   * One that cannot be served (stored before the rules, or its type went away) is set to error.
   */
  private async refresh(): Promise<void> {
    const found = await this.repo.search('Subscription', [['status', 'requested,active,error']], {}, MAX_SUBSCRIPTIONS);
    if (found.matches.length === MAX_SUBSCRIPTIONS) this.log.warn({ max: MAX_SUBSCRIPTIONS }, 'more live Subscriptions than one refresh reads; the rest wait');
    const watches: Watch[] = [];
    for (const stored of found.matches) {
      try {
        watches.push(watchOf(stored.resource as Subscription & { id: string }));
      } catch (err) {
        if (!(err instanceof FhirError)) throw err;
        await setStatus(this.repo, stored.id, { status: 'error', error: `the gateway cannot serve it: ${err.message}` });
      }
    }
    await this.db.transaction((tx) => notifyLog.watch(tx, watches.map((w) => w.type)));
    const requested = watches.filter((w) => w.status === 'requested');
    for (const w of requested) {
      await setStatus(this.repo, w.id, { status: 'active' });
      w.status = 'active';
    }
    const letters = await notifyLog.deadLetters(this.db, requested.map((w) => w.id));
    await enqueueNotifications(this.queue, letters.map(({ subscription, type, id, version }) => ({ subscription, type, id, version })));
    await notifyLog.forget(this.db, letters);
    if (requested.length > 0) this.log.info({ subscriptions: requested.map((w) => w.id), redelivered: letters.length }, 'subscriptions active');
    this.watches = watches;
  }

  /** The notifications `changes` make: per active Subscription of their type, the resources its criteria select. */
  private async match(changes: NotifyChange[]): Promise<NotifyJob[]> {
    const byType = new Map<string, Set<string>>();
    for (const c of changes) byType.set(c.type, (byType.get(c.type) ?? new Set()).add(c.id));
    const jobs: NotifyJob[] = [];
    for (const w of this.watches ?? []) {
      const ids = byType.get(w.type);
      if (!ids || (w.status !== 'active' && w.status !== 'error')) continue;
      const reader = this.repo.withAccess(accessOf(w));
      const params = this.opts.mpi ? await expandPersons(this.opts.mpi, this.db, w.type, w.params) : w.params;
      const all = [...ids];
      for (let i = 0; i < all.length; i += ID_CHUNK) {
        const chunk = all.slice(i, i + ID_CHUNK);
        const found = await reader.search(w.type, [...params, ['_id', chunk.join(',')]], { strict: true }, chunk.length);
        for (const m of found.matches) jobs.push({ subscription: w.id, type: w.type, id: m.id, version: Number(m.versionId) });
      }
    }
    return jobs;
  }
}
