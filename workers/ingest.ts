import { setImmediate } from 'node:timers/promises';
import type { Bundle, OperationOutcome, OperationOutcomeIssue, Patient, Resource } from '@medplum/fhirtypes';
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { mapRecord } from '../mappers';
import type { PatientIndex } from '../mpi';
import { MappingError, type MapResult, type MergeRequest } from '../mappers/types';
import { stampProfiles, validateMappedBundle } from '../profiles/conformance';
import { processBundle } from '../store/bundle';
import { FhirError, outcome } from '../store/errors';
import { messageLog, type MessageResult, type StoredMessage } from '../store/messages';
import { combined } from './combined';
import type { Repository } from '../store/repository';
import { GroupCommit } from './group-commit';
import { ingestMetrics } from './metrics';
import type { PreparedRecords } from './prepared';
import { INGEST_JOB_OPTIONS, INGEST_QUEUE, QUEUE_PREFIX, type IngestJob } from './queues';
import type { SourceRegistry } from './sources';

export interface IngestDeps {
  repo: Repository;
  sources: SourceRegistry;
  log: Logger;
  /** Hands ADT^A40 merges to the patient index (which links every Patient the store writes). */
  mpi?: PatientIndex;
  /** What receipt in this process already mapped (see PreparedRecords). */
  prepared?: PreparedRecords;
}

/**
 * Maps a stored record and checks it against the consortium profiles: everything that can
 * be decided without the store. Receipt calls it to answer the sender (AA or AE naming the
 * field); the worker calls it again to apply (unless receipt in its own process handed the
 * result over, see PreparedRecords), so a mapper fixed since receipt (`$replay`) is the one
 * that counts.
 */
export function prepare(deps: Pick<IngestDeps, 'sources'>, msg: Pick<StoredMessage, 'source' | 'body' | 'charset'>): MapResult {
  const ctx = deps.sources.get(msg.source);
  if (!ctx) throw new MappingError(`source '${msg.source}' is not registered`, {}, 'not-supported');
  const mapped = mapRecord(ctx, msg.body, msg.charset ?? undefined);
  validateMappedBundle(mapped.bundle, mapped.createOnly);
  stampProfiles(mapped.bundle, mapped.createOnly);
  return mapped;
}

/** A received record mapped: as receipt in this process left it, or mapped again. */
const preparedFor = (deps: IngestDeps, m: StoredMessage): MapResult => deps.prepared?.take(m.id) ?? prepare(deps, m);

/** The Patient a mapped record is about (the survivor of a merge): its records are applied in arrival order. */
export function patientKey(mapped: MapResult): string | undefined {
  return mapped.merge?.survivor ?? mapped.bundle.entry?.find((e) => e.resource?.resourceType === 'Patient')?.request?.url;
}

/** The advisory lock (hashed) under which a patient's records are applied, by the ingest worker and by imports alike. */
export const patientLockKey = (key: string): string => `ingest:${key}`;

/** A failure the data caused (never retried), as the OperationOutcome kept on the message. */
export function failureOutcome(err: unknown): OperationOutcome | undefined {
  if (err instanceof MappingError) {
    const where = err.where;
    return outcome([{ severity: 'error', code: err.code, diagnostics: where ? `${where}: ${err.message}` : err.message, ...(where ? { expression: [where] } : {}) }]);
  }
  if (err instanceof FhirError && err.status < 500) return err.outcome;
  return undefined;
}

/** What a record that made its mapper throw (a bug, not bad data) is failed with: the log has the error, the outcome does not quote the record. */
export const mapperBugOutcome = (): OperationOutcome =>
  outcome([{ severity: 'error', code: 'exception', diagnostics: 'The mapper failed on this record; see the gateway log' }]);

/**
 * Applies one received message, in its patient's arrival order: under a lock on the patient
 * key, every earlier message of that patient still waiting is applied first, in one
 * transaction. A message whose job runs later finds itself done and returns. Bad data marks
 * only its own message failed (a savepoint undoes its writes); anything else (database away,
 * deadlock) rolls the whole transaction back and throws, for the job to retry.
 */
export async function applyMessage(deps: IngestDeps, job: IngestJob): Promise<void> {
  const { messageId } = job;
  let patientKey = job.patientKey;
  if (patientKey === undefined) {
    // Queued before jobs carried the key: the log has it.
    const msg = await messageLog.get(deps.repo.executor, messageId);
    if (!msg || msg.state !== 'received') return;
    patientKey = msg.patientKey;
  }
  try {
    const finished = await deps.repo.transaction(async (tx) => {
      const batch = await lockWaiting(tx, [{ messageId, patientKey }]);
      // Alone, a record needs no savepoint: if it fails, the whole transaction is undone
      // and its failure recorded in a fresh one (two round trips saved on the common path).
      const isolate = batch.length > 1 ? (fn: (r: Repository) => Promise<string[]>) => tx.savepoint(fn) : undefined;
      const results: Finished[] = [];
      for (const m of batch) results.push(await applyOne(deps, tx, m, isolate));
      return results;
    });
    count(finished);
  } catch (err) {
    if (!(err instanceof RecordFailed)) throw err;
    count([await deps.repo.transaction((tx) => fail(deps, tx, err.record, err.cause, 'write'))]);
  }
}

/**
 * Applies the messages of jobs worked at once (see startIngestWorker) in one transaction: under
 * their patients' locks, each patient's waiting messages in arrival order, written as few
 * Bundles as keep every message's versions what they would have been one by one. Resolves to
 * one entry per job: undefined when done, or the error its job retries on. If the store
 * refuses any record, or the transaction fails, the jobs are applied one by one instead, so
 * only the record at fault fails.
 */
export async function applyMessages(deps: IngestDeps, jobs: IngestJob[]): Promise<(unknown | undefined)[]> {
  const keyed = jobs.length > 1 ? jobs.filter((j) => j.patientKey !== undefined) : [];
  const errors = new Map<IngestJob, unknown>();
  let together = false;
  if (keyed.length > 1) {
    try {
      count(await deps.repo.transaction((tx) => applyTogether(deps, tx, keyed)));
      together = true;
    } catch (err) {
      deps.log.debug({ messages: keyed.length, err: (err as Error)?.message }, 'messages applied together failed; applying them one by one');
    }
  }
  for (const job of jobs) {
    if (together && job.patientKey !== undefined) continue;
    await applyMessage(deps, job).catch((err: unknown) => errors.set(job, err ?? new Error('ingest job failed')));
  }
  return jobs.map((j) => errors.get(j));
}

/** Locks the jobs' patients and returns their messages still waiting, oldest first (with each patient's earlier ones). */
async function lockWaiting(tx: Repository, jobs: { messageId: string; patientKey?: string | null }[]): Promise<StoredMessage[]> {
  await lockPatientKeys(tx, jobs.flatMap((j) => (j.patientKey ? [j.patientKey] : [])));
  return messageLog.lockPending(tx.executor, jobs.map((j) => j.messageId));
}

/**
 * Takes the per-patient lock of every key at once, in one order (sorted by hash), as the
 * ingest worker and imports both do, so that two writers never deadlock on each other and a
 * patient's records are never applied by two at once.
 */
export async function lockPatientKeys(tx: Repository, patientKeys: string[]): Promise<void> {
  if (patientKeys.length === 0) return;
  const keys = [...new Set(patientKeys)].map(patientLockKey);
  await tx.executor.query('SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY 1) AS s', [keys]);
}

interface Ready {
  message: StoredMessage;
  mapped: MapResult;
  facility: string;
}

async function applyTogether(deps: IngestDeps, tx: Repository, jobs: IngestJob[]): Promise<Finished[]> {
  const waiting = await lockWaiting(tx, jobs);
  const results: Finished[] = [];
  const ready: Ready[] = [];
  for (const message of waiting) {
    try {
      ready.push({ message, mapped: preparedFor(deps, message), facility: deps.sources.get(message.source)!.source.facility });
    } catch (err) {
      results.push(failed(deps, message, err, 'map'));
    }
  }
  for (const group of writeGroups(ready)) {
    // Between Bundles, receipt gets the event loop: a sender's ACK waits on no more than one.
    await setImmediate();
    const first = group[0];
    const written = await writeMapped(deps, tx.withAccess({ facility: first.facility }), group.length === 1 ? first.mapped : combined(group.map((g) => g.mapped)), first.message.source);
    const writer = new Map<string, Ready>();
    for (const g of [...group].reverse()) for (const e of g.mapped.bundle.entry ?? []) writer.set(e.request!.url, g);
    const resources = new Map<Ready, string[]>(group.map((g) => [g, []]));
    for (const version of written) resources.get(writer.get(version.split('/_history/')[0]) ?? first)!.push(version);
    for (const g of group) results.push(done(deps, g.message, g.mapped, resources.get(g)!));
  }
  await messageLog.finishMany(tx.executor, results);
  return results;
}

/**
 * The most messages one Bundle of a batch writes: validating, indexing and serializing a Bundle
 * hold the event loop for a time that grows with it, and receipt waits behind them.
 */
const RUN_MESSAGES = 8;

/**
 * Splits messages (in arrival order) into runs written as one Bundle each, of RUN_MESSAGES at
 * most. A run also breaks where a message writes a resource the run already writes (so each
 * version is written, in order), at a merge (written alone) and where the facility changes.
 * Two copies of the same demographics (createOnly) do not break it: the second would have been
 * left out anyway.
 */
function writeGroups(ready: Ready[]): Ready[][] {
  const groups: Ready[][] = [];
  let run: Ready[] = [];
  const urls = new Map<string, boolean>(); // url -> written only as a createOnly copy so far
  for (const r of ready) {
    const createOnly = new Set(r.mapped.createOnly);
    const entries = (r.mapped.bundle.entry ?? []).map((e) => ({ url: e.request!.url, copy: createOnly.has(e.fullUrl!) }));
    const clash = entries.some((e) => urls.has(e.url) && !(e.copy && urls.get(e.url)));
    if (run.length > 0 && (run.length >= RUN_MESSAGES || clash || r.mapped.merge || run[0].mapped.merge || r.facility !== run[0].facility)) {
      groups.push(run);
      run = [];
      urls.clear();
    }
    run.push(r);
    for (const e of entries) urls.set(e.url, (urls.get(e.url) ?? true) && e.copy);
  }
  if (run.length > 0) groups.push(run);
  return groups;
}

/** A lone record's data failure, carried out of its transaction so that rolls back first. */
class RecordFailed extends Error {
  constructor(
    readonly record: StoredMessage,
    override readonly cause: unknown,
  ) {
    super('record failed');
  }
}

/** A message's end as the log records it, and what /metrics counts of it once that is committed. */
type Finished = MessageResult & { id: string; source: string; receivedAt: string };

/**
 * Counts messages finished in a committed transaction. Counting them as they finish would count
 * twice the messages of a batch rolled back and applied again one by one.
 */
function count(finished: Finished[]): void {
  for (const f of finished) {
    ingestMetrics.applied.inc({ source: f.source, state: f.state });
    if (f.state === 'failed') continue;
    ingestMetrics.lag.observe({ source: f.source }, (Date.now() - Date.parse(f.receivedAt)) / 1000);
    ingestMetrics.unmapped.inc({ source: f.source }, f.unmapped?.length ?? 0);
  }
}

async function applyOne(deps: IngestDeps, tx: Repository, m: StoredMessage, isolate?: (fn: (r: Repository) => Promise<string[]>) => Promise<string[]>): Promise<Finished> {
  let mapped: MapResult;
  try {
    mapped = preparedFor(deps, m);
  } catch (err) {
    return fail(deps, tx, m, err, 'map');
  }
  try {
    // Bound to the sending facility: the store stamps it as author and holds the record to the
    // facility's own resources and MRN system, as it does a client's write.
    const facility = deps.sources.get(m.source)!.source.facility;
    const write = (unbound: Repository): Promise<string[]> => writeMapped(deps, unbound.withAccess({ facility }), mapped, m.source);
    let resources: string[];
    if (isolate) resources = await isolate(write);
    else {
      try {
        resources = await write(tx);
      } catch (err) {
        throw failureOutcome(err) ? new RecordFailed(m, err) : err;
      }
    }
    const finished = done(deps, m, mapped, resources);
    await messageLog.finishMany(tx.executor, [finished]);
    return finished;
  } catch (err) {
    if (err instanceof RecordFailed) throw err;
    return fail(deps, tx, m, err, 'write');
  }
}

/** A message applied: its versions written, its unmapped codes, the mapper's warnings. */
function done(deps: IngestDeps, m: StoredMessage, mapped: MapResult, resources: string[]): Finished {
  const warnings: OperationOutcomeIssue[] = mapped.warnings.map((w) => ({ severity: 'warning', code: 'informational', diagnostics: w }));
  deps.log.debug({ messageId: m.id, kind: m.kind, resources: resources.length }, 'message applied');
  return { ...origin(m), state: 'done', resources, unmapped: mapped.unmapped, outcome: warnings.length ? outcome(warnings) : undefined };
}

const origin = (m: StoredMessage) => ({ id: m.id, source: m.source, receivedAt: m.receivedAt });

async function fail(deps: IngestDeps, tx: Repository, m: StoredMessage, err: unknown, stage: 'map' | 'write'): Promise<Finished> {
  const finished = failed(deps, m, err, stage);
  await messageLog.finishMany(tx.executor, [finished]);
  return finished;
}

/**
 * A message failed by its data, with the reason. Other errors while writing are transient and
 * thrown for the job to retry; other errors while mapping are mapper bugs: retrying will not
 * help, so the record fails, and the log says so without quoting the record.
 */
function failed(deps: IngestDeps, m: StoredMessage, err: unknown, stage: 'map' | 'write'): Finished {
  let reason = failureOutcome(err);
  if (!reason) {
    if (stage === 'write') throw err;
    deps.log.error({ messageId: m.id, source: m.source, err: (err as Error)?.message }, 'mapper failed unexpectedly');
    reason = mapperBugOutcome();
  }
  return { ...origin(m), state: 'failed', outcome: reason };
}

/**
 * Writes what a record mapped to, through `repo` (bound to the facility it is written for),
 * and hands a merge to the patient index: the one write path of every record, sent or imported.
 */
export async function writeMapped(deps: Pick<IngestDeps, 'mpi'>, repo: Repository, mapped: MapResult, source: string): Promise<string[]> {
  const written = await writeBundle(repo, mapped);
  if (mapped.merge) {
    written.push(...(await retire(repo, mapped.merge)));
    await mergePersons(deps, repo, mapped.merge, source);
  }
  return written;
}

/**
 * Writes the mapped Bundle, leaving out the copies of demographics (`createOnly`) whose
 * resource already exists. Returns the versions written, as `Type/id/_history/n`.
 */
async function writeBundle(repo: Repository, mapped: MapResult): Promise<string[]> {
  let bundle: Bundle = mapped.bundle;
  if (mapped.createOnly.length > 0) {
    const createOnly = new Set(mapped.createOnly);
    const candidates = bundle.entry!.filter((e) => createOnly.has(e.fullUrl!)).map((e) => e.request!.url);
    const present = await repo.existing(candidates);
    if (present.size > 0) bundle = { ...bundle, entry: bundle.entry!.filter((e) => !(createOnly.has(e.fullUrl!) && present.has(e.request!.url))) };
  }
  const result = await processBundle(repo, bundle);
  return result.entries.filter((e) => e.stored).map((e) => `${e.stored!.reference}/_history/${e.stored!.versionId}`);
}

/**
 * ADT^A40: marks the retired registration inactive and points it at the survivor
 * (Patient.link replaced-by / replaces), so every reader sees the merge. Moving records and
 * undoing merges belong to the patient index.
 */
async function retire(repo: Repository, merge: MergeRequest): Promise<string[]> {
  const [type, id] = merge.retired.split('/');
  const present = await repo.existing([merge.retired, merge.survivor]);
  const written: string[] = [];
  if (present.has(merge.retired)) {
    const retired = (await repo.read(type, id)).resource as Patient;
    const links = (retired.link ?? []).filter((l) => l.other.reference !== merge.survivor);
    const out = await repo.update({ ...retired, active: false, link: [...links, { other: { reference: merge.survivor }, type: 'replaced-by' }] });
    written.push(`${merge.retired}/_history/${out.stored.versionId}`);
  }
  if (present.has(merge.survivor)) {
    const [st, sid] = merge.survivor.split('/');
    const survivor = (await repo.read(st, sid)).resource as Patient;
    if (!survivor.link?.some((l) => l.other.reference === merge.retired && l.type === 'replaces')) {
      const out = await repo.update({ ...survivor, link: [...(survivor.link ?? []), { other: { reference: merge.retired }, type: 'replaces' }] } as Resource);
      written.push(`${merge.survivor}/_history/${out.stored.versionId}`);
    }
  }
  return written;
}

/**
 * ADT^A40 in the patient index: the facility says two registrations are one person, so the
 * retired registration's person is merged into the survivor's (reversibly, see $mpi-unmerge).
 */
async function mergePersons(deps: Pick<IngestDeps, 'mpi'>, repo: Repository, merge: MergeRequest, source: string): Promise<void> {
  if (!deps.mpi) return;
  const [retired, survivor] = [merge.retired, merge.survivor].map((r) => r.split('/')[1]);
  const [a, b] = [await deps.mpi.person(repo.executor, retired), await deps.mpi.person(repo.executor, survivor)];
  if (a && b) await deps.mpi.merge(repo, a.goldenId, b.goldenId, 'ADT^A40', source);
}

/** The most messages one transaction of the ingest worker applies. */
const INGEST_BATCH = 32;

export interface IngestWorkerOptions {
  connection: ConnectionOptions;
  concurrency: number;
  /** The queue's key prefix (see ingestQueue). */
  prefix?: string;
}

/**
 * The BullMQ worker. When a job has used all its attempts on transient failures, its message
 * is marked failed (with the last error's class, never its content) rather than left waiting.
 */
export function startIngestWorker(deps: IngestDeps, opts: IngestWorkerOptions): Worker<IngestJob> {
  // The jobs active at once (opts.concurrency) are applied together, a transaction per
  // INGEST_BATCH: a commit and its round trips serve many messages.
  const together = new GroupCommit<IngestJob>((jobs) => applyMessages(deps, jobs), { maxInFlight: 2, maxBatch: INGEST_BATCH });
  const worker = new Worker<IngestJob>(INGEST_QUEUE, (job: Job<IngestJob>) => together.add(job.data), {
    connection: opts.connection,
    prefix: opts.prefix ?? QUEUE_PREFIX,
    concurrency: opts.concurrency,
    // Jobs take milliseconds: a worker that died (kill -9) hands its jobs back within seconds.
    lockDuration: 10_000,
    stalledInterval: 5_000,
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    deps.log.warn({ messageId: job.data.messageId, attempt: job.attemptsMade, err: err.message.split('\n')[0] }, 'ingest job failed');
    if (job.attemptsMade < (INGEST_JOB_OPTIONS.attempts ?? 1)) return;
    messageLog
      .finish(deps.repo.executor, job.data.messageId, {
        state: 'failed',
        outcome: outcome([{ severity: 'error', code: 'transient', diagnostics: `Gave up after ${job.attemptsMade} attempts: ${err.name}` }]),
      })
      .catch((e: Error) => deps.log.error({ messageId: job.data.messageId, err: e.message }, 'could not mark the message failed'));
  });
  worker.on('error', (err) => deps.log.warn({ err: err.message }, 'ingest worker error'));
  return worker;
}
