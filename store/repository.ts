import { randomUUID } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { AccessContext } from './access';
import { readRule, visibleSql, type ReadRule } from './access-filter';
import { accessLabels, optOutOf, sensitiveCodeSet, stampAuthor, careRelationOf, type AccessLabels, type CareRelation, type AccessOptions } from './access-labels';
import { checkFacilityWrite } from './access-writes';
import { deepEqual } from './deep-equal';
import { inTransaction, type Database, type SqlExecutor } from './db/database';
import { badRequest, FhirError, forbidden, gone, notFound, preconditionFailed } from './errors';
import { extractIndexRows } from './extract';
import { patientCompartmentKeys } from './compartment';
import { parseSearch, type ParseOptions } from './search/parse';
import { executeSearch, type SearchResult } from './search/execute';
import type { Cursor, SearchQuery } from './search/query';
import { Params } from './search/sql';
import { fromRow, RESOURCE_COLUMNS, StoredResource, type ResourceRow } from './stored';
import { writeBatch, type WriteOp } from './writer';

/** Checks a resource before it is stored; throws a FhirError naming the offending path. */
export type Validator = (resource: Resource) => void;

/** A resource version a transaction wrote, as stored JSON (undefined for a deletion). */
export interface Written {
  type: string;
  id: string;
  json?: string;
  /** Who asked for the write, when not a client (e.g. 'mpi' for the patient index's own records). */
  origin?: string;
}

/**
 * Called inside the transaction after each batch of writes, so that what depends on them (the
 * patient index) commits or rolls back with them. Throwing a FhirError refuses the writes.
 */
export type WriteObserver = (repo: Repository, written: Written[]) => Promise<void>;

/**
 * A client's write of a resource that more than its author may change (a referral Task: the
 * receiving facility accepts what the referring one wrote), checked instead of the author rule
 * of store/access-writes.ts. `facility` is the writer's, undefined for an unrestricted writer
 * (the consortium office). Returns the author the new version keeps, undefined to leave the
 * write to the author rule, or throws a FhirError naming what is refused.
 */
export interface WriteGuard {
  type: string;
  check(write: { facility?: string; id: string; prior?: Resource; next?: Resource; at?: string }): { author: string | null } | undefined;
}

export interface StoreOptions {
  validate?: Validator;
  /** Filled by `observeWrites`; shared by every transaction-bound copy of the repository. */
  observers?: WriteObserver[];
  /** Configuration of the access rules; see store/access.ts. */
  access?: AccessOptions;
  /** Filled by `guardWrites`, like observers. */
  guards?: WriteGuard[];
}

export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

/** A write to apply; several are applied together, atomically, by `applyWrites`. */
export interface WriteIntent {
  method: 'create' | 'update' | 'delete';
  type: string;
  id: string;
  resource?: Resource;
  /** Version the client last saw (`If-Match`); the write fails with 412 if it is stale. */
  ifMatch?: string;
  /** Where the resource sits in the request (e.g. `Bundle.entry[3].resource`), for error messages. */
  at?: string;
  /** See Written.origin. */
  origin?: string;
}

export interface WriteOutcome {
  status: 200 | 201 | 204;
  stored: StoredResource;
}

export interface HistoryOptions {
  since?: string;
  count: number;
  cursor?: Cursor;
}

export interface HistoryPage {
  entries: StoredResource[];
  next?: Cursor;
}

export interface EverythingOptions {
  since?: string;
  types?: string[];
  count: number;
  cursor?: Cursor;
}

export interface CompartmentOptions extends EverythingOptions {
  /** Leaves out what changed after this instant (a bulk export's transactionTime). */
  until?: string;
}

/**
 * The FHIR repository: CRUD with version history, search, and atomic multi-resource writes.
 * An instance is bound either to the database (each call its own transaction) or to one open
 * transaction (see `transaction`), so bundle processing composes the same methods.
 */
export class Repository {
  private readonly sensitiveCodes: Set<string>;

  constructor(
    private readonly db: Database,
    private readonly options: StoreOptions = {},
    private readonly tx?: SqlExecutor,
    private readonly access?: AccessContext,
  ) {
    this.sensitiveCodes = sensitiveCodeSet(options.access);
  }

  /** This repository as seen by one reader/writer (store/access.ts); transactions from it keep the context. */
  withAccess(ctx: AccessContext): Repository {
    return new Repository(this.db, this.options, this.tx, ctx);
  }

  private get rule(): ReadRule | undefined {
    return readRule(this.access);
  }

  /** The facility writes are held to, or undefined when they are not held (no context, or unrestricted). */
  private writingFacility(): string | undefined {
    if (!this.access || this.access.unrestricted) return undefined;
    if (!this.access.facility) throw forbidden('Writing needs a facility to write for');
    return this.access.facility;
  }

  /** Registers a WriteObserver for every later write through this store. */
  observeWrites(observer: WriteObserver): void {
    (this.options.observers ??= []).push(observer);
  }

  /** Registers a WriteGuard for every later client write of its type through this store. */
  guardWrites(guard: WriteGuard): void {
    (this.options.guards ??= []).push(guard);
  }

  /**
   * For each of `patients` (Patient ids), the open Task that makes `facility` treat that person
   * (any of their linked registrations), if any: what the audit names as the purpose of a read.
   */
  async treatingTasks(facility: string, patients: string[]): Promise<Map<string, string>> {
    if (patients.length === 0) return new Map();
    const rows = await this.sql.query<{ patient_id: string; task_id: string }>(
      `WITH asked AS (SELECT a.id, COALESCE(l.golden_id, a.id) AS person FROM unnest($2::text[]) AS a(id) LEFT JOIN mpi_link l ON l.patient_id = a.id),
       treats AS (SELECT t.task_id, COALESCE(l.golden_id, t.patient_id) AS person FROM access_treatment t LEFT JOIN mpi_link l ON l.patient_id = t.patient_id
                  WHERE t.facilities @> ARRAY[$1::text])
       SELECT DISTINCT ON (a.id) a.id AS patient_id, t.task_id FROM asked a JOIN treats t ON t.person = a.person ORDER BY a.id, t.task_id`,
      [facility, patients],
    );
    return new Map(rows.map((r) => [r.patient_id, r.task_id]));
  }

  get kind(): Database['kind'] {
    return this.db.kind;
  }

  private get sql(): SqlExecutor {
    return this.tx ?? this.db;
  }

  /** Runs `fn` with a repository bound to one transaction (or this one, if already inside). */
  transaction<T>(fn: (repo: Repository) => Promise<T>): Promise<T> {
    if (this.tx) return fn(this);
    return inTransaction(this.db, (tx) => fn(new Repository(this.db, this.options, tx, this.access)));
  }

  /**
   * Runs `fn` inside a savepoint of the current transaction: if it throws, its writes are
   * undone and the transaction stays usable, so one bad record in a batch costs only itself.
   */
  async savepoint<T>(fn: (repo: Repository) => Promise<T>): Promise<T> {
    if (!this.tx) throw new Error('savepoint() needs a repository bound to a transaction');
    await this.tx.query('SAVEPOINT sp');
    try {
      const out = await fn(this);
      await this.tx.query('RELEASE SAVEPOINT sp');
      return out;
    } catch (err) {
      await this.tx.query('ROLLBACK TO SAVEPOINT sp');
      throw err;
    }
  }

  /** The executor of the transaction this repository is bound to, for tables beside the resources (the ingest log). */
  get executor(): SqlExecutor {
    return this.sql;
  }

  /** Which of `Type/id` references name a current (not deleted) resource. */
  async existing(references: string[]): Promise<Set<string>> {
    if (references.length === 0) return new Set();
    const pairs = references.map((r) => r.split('/', 2));
    const ps = new Params();
    const rows = await this.sql.query<{ type: string; id: string }>(
      `SELECT r.type, r.id FROM resource r JOIN unnest(${ps.add(pairs.map((p) => p[0]))}::text[], ${ps.add(pairs.map((p) => p[1]))}::text[]) AS k(type, id) ON r.type = k.type AND r.id = k.id
       WHERE NOT r.deleted AND ${visibleSql('r', ps, this.rule)}`,
      ps.values,
    );
    return new Set(rows.map((r) => `${r.type}/${r.id}`));
  }

  async read(type: string, id: string): Promise<StoredResource> {
    const ps = new Params();
    const rows = await this.sql.query<ResourceRow>(
      `SELECT ${RESOURCE_COLUMNS} FROM resource r WHERE r.type = ${ps.add(type)} AND r.id = ${ps.add(id)} AND ${visibleSql('r', ps, this.rule)}`,
      ps.values,
    );
    if (rows.length === 0) throw notFound(`${type}/${id} not found`);
    const stored = fromRow(rows[0]);
    if (stored.deleted) throw gone(`${type}/${id} was deleted`);
    return stored;
  }

  async vread(type: string, id: string, versionId: string): Promise<StoredResource> {
    const version = Number(versionId);
    if (!Number.isInteger(version) || version < 1) throw notFound(`${type}/${id}/_history/${versionId} not found`);
    const ps = new Params();
    const cond = `r.type = ${ps.add(type)} AND r.id = ${ps.add(id)} AND r.version = ${ps.add(version)} AND ${visibleSql('r', ps, this.rule)}`;
    const rows = await this.sql.query<ResourceRow>(
      `SELECT ${RESOURCE_COLUMNS} FROM resource r WHERE ${cond}
       UNION ALL
       SELECT ${RESOURCE_COLUMNS} FROM resource_history r WHERE ${cond}`,
      ps.values,
    );
    if (rows.length === 0) throw notFound(`${type}/${id}/_history/${versionId} not found`);
    const stored = fromRow(rows[0]);
    if (stored.deleted) throw gone(`${type}/${id} version ${versionId} is a deletion`);
    return stored;
  }

  async create(resource: Resource, opts: { ifNoneExist?: [string, string][] } = {}): Promise<WriteOutcome> {
    return this.transaction(async (repo) => {
      if (opts.ifNoneExist) {
        const existing = await repo.findForCondition(resource.resourceType, opts.ifNoneExist, 'If-None-Exist');
        if (existing) return { status: 200, stored: existing };
      }
      const [out] = await repo.applyWrites([{ method: 'create', type: resource.resourceType, id: randomUUID(), resource }]);
      return out;
    });
  }

  async update(resource: Resource, opts: { ifMatch?: string } = {}): Promise<WriteOutcome> {
    if (!resource.id) throw badRequest('Resource id is required for update', [`${resource.resourceType}.id`]);
    return this.transaction(async (repo) => {
      const [out] = await repo.applyWrites([{ method: 'update', type: resource.resourceType, id: resource.id!, resource, ifMatch: opts.ifMatch }]);
      return out;
    });
  }

  /** `PUT Type?search`: update the one match, create if none, 412 if several. */
  async conditionalUpdate(resource: Resource, condition: [string, string][]): Promise<WriteOutcome> {
    return this.transaction(async (repo) => {
      const existing = await repo.findForCondition(resource.resourceType, condition, 'Conditional update');
      if (existing && resource.id && resource.id !== existing.id) {
        throw badRequest(`Resource id ${resource.id} does not match the resource the condition found`, [`${resource.resourceType}.id`]);
      }
      const id = existing?.id ?? resource.id ?? randomUUID();
      const [out] = await repo.applyWrites([{ method: 'update', type: resource.resourceType, id, resource: { ...resource, id } }]);
      return out;
    });
  }

  async delete(type: string, id: string, opts: { ifMatch?: string } = {}): Promise<void> {
    await this.transaction((repo) => repo.applyWrites([{ method: 'delete', type, id, ifMatch: opts.ifMatch }]));
  }

  /**
   * Finds the single resource a conditional operation points at, serialising concurrent
   * conditional writes on the same condition (advisory lock) so two racing requests cannot
   * both create.
   */
  async findForCondition(type: string, condition: [string, string][], what: string): Promise<StoredResource | undefined> {
    if (condition.length === 0) throw badRequest(`${what} needs search parameters`);
    await this.sql.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${type}?${JSON.stringify(condition)}`]);
    const result = await this.search(type, condition, { strict: true }, 2);
    if (result.matches.length > 1) throw preconditionFailed(`${what} matched more than one ${type}`);
    return result.matches[0];
  }

  async search(type: string, params: [string, string][], opts: ParseOptions = {}, maxCount?: number): Promise<SearchResult & { query: SearchQuery }> {
    const query = parseSearch(type, params, opts);
    if (maxCount !== undefined) query.count = maxCount;
    return { query, ...(await executeSearch(this.sql, query, this.rule)) };
  }

  async runSearch(query: SearchQuery): Promise<SearchResult> {
    return executeSearch(this.sql, query, this.rule);
  }

  /**
   * Applies writes atomically: one lock query for existing rows (in a fixed order, so that
   * concurrent bundles cannot deadlock), then one batched write. Unchanged updates keep their
   * version, so a resent message does not grow the history.
   */
  async applyWrites(intents: WriteIntent[]): Promise<WriteOutcome[]> {
    if (!this.tx) return this.transaction((repo) => repo.applyWrites(intents));
    const lastUpdated = new Date().toISOString();
    const keyed = intents.filter((i) => i.method !== 'create');
    // A write with an origin is the store's own (the patient index's golden records and audit), not the client's.
    const facility = intents.some((i) => i.origin === undefined) ? this.writingFacility() : undefined;
    const existing = new Map<string, Prior>();
    if (keyed.length > 0) {
      const rows = await this.tx.query<Prior & { type: string; id: string }>(
        `SELECT r.rk, r.type, r.id, r.version, r.deleted, r.content::text AS content, r.author, r.sensitive, r.patients FROM resource r
         JOIN unnest($1::text[], $2::text[]) AS k(type, id) ON r.type = k.type AND r.id = k.id
         ORDER BY r.type, r.id FOR UPDATE OF r`,
        [keyed.map((i) => i.type), keyed.map((i) => i.id)],
      );
      for (const r of rows) existing.set(`${r.type}/${r.id}`, r);
    }

    const ops: WriteOp[] = [];
    const outcomes: WriteOutcome[] = [];
    const planned = new Map<string, WriteOp>();
    for (const intent of intents) {
      const key = `${intent.type}/${intent.id}`;
      if (planned.has(key)) throw badRequest(`${key} is written more than once in one transaction`);
      if (!ID_PATTERN.test(intent.id)) throw badRequest(`Invalid resource id '${intent.id}'`, [`${intent.type}.id`]);
      const prior = existing.get(key);
      const heldTo = intent.origin === undefined ? facility : undefined;
      const live = prior && !prior.deleted ? prior : undefined;
      const guarded = intent.origin === undefined ? this.guard(intent, live, heldTo) : undefined;
      if (heldTo !== undefined && !guarded) {
        // Refused either way; but naming the author of a record the writer may not even read would tell it who holds what about whom.
        if (live && live.author !== heldTo && !(await this.visibleRow(live.rk))) throw forbidden(`${key} cannot be written by ${heldTo}`);
        checkFacilityWrite(heldTo, intent, live, intent.resource, this.options.access?.mrnSystems ?? {});
      }
      if (intent.ifMatch !== undefined && (!prior || String(prior.version) !== intent.ifMatch)) {
        throw preconditionFailed(`${key} is at version ${prior?.version ?? 'none'}, not ${intent.ifMatch}`);
      }
      if (intent.method === 'delete') {
        if (!prior || prior.deleted) continue;
        const labels: AccessLabels = { author: prior.author, sensitive: prior.sensitive, patients: prior.patients };
        const op: WriteOp = { type: intent.type, id: intent.id, rk: prior.rk, version: prior.version + 1, lastUpdated, deleted: true, json: null, index: null, labels, optOut: optOutField(intent.type, null), care: careField(intent.type, null) };
        ops.push(op);
        planned.set(key, op);
        outcomes.push({ status: 204, stored: new StoredResource(intent.type, intent.id, String(op.version), lastUpdated, true, null) });
        continue;
      }
      const author = guarded ? guarded.author : heldTo;
      const resource = author ? stampAuthor(intent.resource!, author) : intent.resource!;
      if (resource.resourceType !== intent.type) throw badRequest(`Expected a ${intent.type}, got ${resource.resourceType}`, ['resourceType']);
      this.validate(resource, intent.at);
      if (prior && !prior.deleted && prior.content && sameContent(prior.content, resource)) {
        outcomes.push({ status: 200, stored: fromRow({ type: intent.type, id: intent.id, version: prior.version, last_updated: JSON.parse(prior.content).meta?.lastUpdated ?? lastUpdated, deleted: false, content: prior.content, patients: prior.patients.join(',') }) });
        continue;
      }
      const version = prior ? prior.version + 1 : 1;
      const stamped = { ...resource, id: intent.id, meta: { ...resource.meta, versionId: String(version), lastUpdated } } as Resource;
      const json = JSON.stringify(stamped);
      const index = extractIndexRows(stamped as Resource & { resourceType: string; [k: string]: unknown });
      const labels = accessLabels(stamped as Resource & { id: string }, index, this.sensitiveCodes);
      const op: WriteOp = { type: intent.type, id: intent.id, rk: prior?.rk, version, lastUpdated, deleted: false, json, index, labels, optOut: optOutField(intent.type, optOutOf(stamped)), care: careField(intent.type, careRelationOf(stamped as Resource & { id: string })) };
      ops.push(op);
      planned.set(key, op);
      outcomes.push({ status: prior && !prior.deleted ? 200 : 201, stored: new StoredResource(intent.type, intent.id, String(version), lastUpdated, false, json, labels.patients.join(',')) });
    }
    if (ops.length > 0) await writeBatch(this.tx, ops);
    if (ops.length > 0 && this.options.observers?.length) {
      const origin = new Map(intents.map((i) => [`${i.type}/${i.id}`, i.origin]));
      const written: Written[] = ops.map((op) => ({ type: op.type, id: op.id, json: op.json ?? undefined, origin: origin.get(`${op.type}/${op.id}`) }));
      // Observers are the store's own (the patient index): their follow-up writes are not the client's.
      const internal = this.access ? new Repository(this.db, this.options, this.tx) : this;
      for (const observe of this.options.observers) await observe(internal, written);
    }
    return outcomes;
  }

  /** Whether this repository's reader may read the current row `rk`. */
  private async visibleRow(rk: number): Promise<boolean> {
    const ps = new Params();
    const rows = await this.sql.query(`SELECT 1 FROM resource r WHERE r.rk = ${ps.add(rk)} AND ${visibleSql('r', ps, this.rule)}`, ps.values);
    return rows.length > 0;
  }

  /** The guard's decision on a client write of a guarded type; undefined when none applies. */
  private guard(intent: WriteIntent, prior: Prior | undefined, facility: string | undefined): { author: string | null } | undefined {
    const guards = this.options.guards?.filter((g) => g.type === intent.type);
    if (!guards?.length) return undefined;
    const before = prior?.content ? (JSON.parse(prior.content) as Resource) : undefined;
    for (const g of guards) {
      const decision = g.check({ facility, id: intent.id, prior: before, next: intent.resource, at: intent.at });
      if (decision) return decision;
    }
    return undefined;
  }

  private validate(resource: Resource, at?: string): void {
    try {
      this.options.validate?.(resource);
    } catch (err) {
      if (!(err instanceof FhirError) || !at) throw err;
      const expression = err.expression?.map((e) => e.replace(new RegExp(`^${resource.resourceType}`), at));
      throw new FhirError(err.status, err.code, `${at}: ${err.message}`, expression);
    }
  }

  async history(scope: { type?: string; id?: string }, opts: HistoryOptions): Promise<HistoryPage> {
    const ps = new Params();
    const where: string[] = [];
    if (scope.type) where.push(`r.type = ${ps.add(scope.type)}`);
    if (scope.id) where.push(`r.id = ${ps.add(scope.id)}`);
    if (opts.since) where.push(`r.last_updated >= ${ps.add(opts.since)}::timestamptz`);
    where.push(visibleSql('r', ps, this.rule));
    if (opts.cursor) {
      const [lu, version] = opts.cursor.values;
      where.push(`(r.last_updated, r.rk, r.version) < (${ps.add(lu)}::timestamptz, ${ps.add(opts.cursor.rk)}::bigint, ${ps.add(version)}::int)`);
    }
    const cond = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows = await this.sql.query<ResourceRow & { rk: number }>(
      `SELECT * FROM (
         SELECT ${RESOURCE_COLUMNS}, r.rk FROM resource r ${cond}
         UNION ALL
         SELECT ${RESOURCE_COLUMNS}, r.rk FROM resource_history r ${cond}
       ) h ORDER BY h.last_updated DESC, h.rk DESC, h.version DESC LIMIT ${opts.count + 1}`,
      ps.values,
    );
    if (scope.id && rows.length === 0 && !opts.cursor) throw notFound(`${scope.type}/${scope.id} not found`);
    const page = rows.slice(0, opts.count);
    const last = page[page.length - 1];
    return {
      entries: page.map(fromRow),
      next: rows.length > opts.count && last ? { values: [fromRow(last).lastUpdated, last.version], rk: last.rk, direction: 'next' } : undefined,
    };
  }

  /**
   * The patient compartment of one person (several Patient ids when the patient index links
   * registrations), plus the resources its members reference that sit outside any compartment
   * (organisations, practitioners, medications), keyset-paged by rk.
   */
  async everything(patientIds: string[], opts: EverythingOptions): Promise<{ entries: StoredResource[]; next?: Cursor }> {
    const { rows, next } = await this.compartmentRows(patientIds, opts);
    const entries = rows.map(fromRow);
    if (rows.length > 0) entries.push(...(await this.referencedSupport(rows.map((r) => r.rk), new Set(entries.map((e) => e.reference)), opts.types)));
    return { entries, next };
  }

  /**
   * The patient compartments of `patientIds`, or of every patient when undefined, without the
   * support resources `everything` adds (a bulk export would repeat them on every page),
   * keyset-paged by rk.
   */
  async compartment(patientIds: string[] | undefined, opts: CompartmentOptions): Promise<{ entries: StoredResource[]; next?: Cursor }> {
    const { rows, next } = await this.compartmentRows(patientIds, opts);
    return { entries: rows.map(fromRow), next };
  }

  private async compartmentRows(patientIds: string[] | undefined, opts: CompartmentOptions): Promise<{ rows: (ResourceRow & { rk: number })[]; next?: Cursor }> {
    const ps = new Params();
    const keys = ps.add(patientCompartmentKeys());
    let inCompartment: string;
    if (patientIds) {
      const ids = ps.add(patientIds);
      // A UNION of keys rather than an OR, so both halves use their index at any table size.
      inCompartment = `r.rk IN (SELECT x.rk FROM idx_ref x WHERE x.tid = ANY(${ids}::text[]) AND x.ttype = 'Patient' AND x.p = ANY(${keys}::text[])
        UNION SELECT p.rk FROM resource p WHERE p.type = 'Patient' AND p.id = ANY(${ids}::text[]))`;
    } else {
      // Every patient's: one probe per row walked in rk order, so a page costs its own rows, not a set built from the whole table.
      inCompartment = `(r.type = 'Patient' OR EXISTS (SELECT 1 FROM idx_ref x WHERE x.rk = r.rk AND x.ttype = 'Patient' AND x.p = ANY(${keys}::text[])))`;
    }
    const where = [`NOT r.deleted`, inCompartment];
    if (opts.types) where.push(`r.type = ANY(${ps.add(opts.types)}::text[])`);
    if (opts.since) where.push(`r.last_updated >= ${ps.add(opts.since)}::timestamptz`);
    if (opts.until) where.push(`r.last_updated <= ${ps.add(opts.until)}::timestamptz`);
    if (opts.cursor) where.push(`r.rk > ${ps.add(opts.cursor.rk)}`);
    where.push(visibleSql('r', ps, this.rule));
    const rows = await this.sql.query<ResourceRow & { rk: number }>(
      `SELECT ${RESOURCE_COLUMNS}, r.rk FROM resource r WHERE ${where.join(' AND ')} ORDER BY r.rk LIMIT ${opts.count + 1}`,
      ps.values,
    );
    const page = rows.slice(0, opts.count);
    const last = page[page.length - 1];
    return { rows: page, next: rows.length > opts.count && last ? { values: [], rk: last.rk, direction: 'next' } : undefined };
  }

  private async referencedSupport(rks: number[], seen: Set<string>, types?: string[]): Promise<StoredResource[]> {
    const supportTypes = SUPPORT_TYPES.filter((t) => !types || types.includes(t));
    if (supportTypes.length === 0) return [];
    const ps = new Params();
    const rows = await this.sql.query<ResourceRow>(
      `SELECT DISTINCT ${RESOURCE_COLUMNS} FROM idx_ref x JOIN resource r ON r.type = x.ttype AND r.id = x.tid
       WHERE x.rk = ANY(${ps.add(rks)}::bigint[]) AND x.ttype = ANY(${ps.add(supportTypes)}::text[]) AND NOT r.deleted AND ${visibleSql('r', ps, this.rule)}`,
      ps.values,
    );
    return rows.map(fromRow).filter((s) => !seen.has(s.reference));
  }
}

/** A resource's current row, locked for a write. */
interface Prior extends AccessLabels {
  rk: number;
  version: number;
  deleted: boolean;
  content: string | null;
}

/** WriteOp.optOut: only Consents keep access_optout in step. */
function optOutField(type: string, patient: string | null): string | null | undefined {
  return type === 'Consent' ? patient : undefined;
}

/** WriteOp.care: only Tasks keep the care relationships (access_treatment, access_disclosure) in step. */
function careField(type: string, care: CareRelation | null): CareRelation | null | undefined {
  return type === 'Task' ? care : undefined;
}

/** Resources outside the patient compartment that a patient's record is unreadable without. */
const SUPPORT_TYPES = ['Organization', 'Practitioner', 'PractitionerRole', 'Location', 'Medication', 'Device'];

function sameContent(storedJson: string, incoming: Resource): boolean {
  const stored = JSON.parse(storedJson) as Resource;
  const strip = (r: Resource): unknown => {
    const { meta, ...rest } = r as Resource & { meta?: Record<string, unknown> };
    const { versionId: _v, lastUpdated: _l, ...metaRest } = meta ?? {};
    return { ...rest, meta: metaRest };
  };
  return deepEqual(strip(stored), strip({ ...incoming, id: stored.id } as Resource));
}

