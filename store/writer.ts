import type { SqlExecutor } from './db/database';
import type { IndexRows } from './index-rows';

/** One resource version to write; `rk` is set when the resource already has a row. */
export interface WriteOp {
  type: string;
  id: string;
  rk?: number;
  version: number;
  lastUpdated: string;
  deleted: boolean;
  json: string | null;
  index: IndexRows | null;
}

/**
 * Writes a batch of resource versions and their index rows with a fixed number of statements
 * whatever the batch size (arrays through unnest), which is what makes a 100-entry transaction
 * Bundle cheap. Must run inside a transaction; callers hold row locks on existing rows.
 */
export async function writeBatch(tx: SqlExecutor, ops: WriteOp[]): Promise<void> {
  const creates = ops.filter((o) => o.rk === undefined);
  const updates = ops.filter((o) => o.rk !== undefined);

  if (creates.length > 0) {
    const rows = await tx.query<{ rk: number; type: string; id: string }>(
      `INSERT INTO resource (type, id, version, last_updated, deleted, content)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::boolean[], $6::jsonb[])
       RETURNING rk, type, id`,
      columns(creates, (o) => [o.type, o.id, o.version, o.lastUpdated, o.deleted, o.json]),
    );
    const byKey = new Map(rows.map((r) => [`${r.type}/${r.id}`, r.rk]));
    for (const o of creates) o.rk = byKey.get(`${o.type}/${o.id}`);
  }

  if (updates.length > 0) {
    const rks = updates.map((o) => o.rk);
    await tx.query(
      `INSERT INTO resource_history (rk, type, id, version, last_updated, deleted, content)
       SELECT rk, type, id, version, last_updated, deleted, content FROM resource WHERE rk = ANY($1::bigint[])`,
      [rks],
    );
    await tx.query(
      `UPDATE resource r SET version = u.version, last_updated = u.last_updated, deleted = u.deleted, content = u.content
       FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::boolean[], $5::jsonb[])
         AS u(rk, version, last_updated, deleted, content)
       WHERE r.rk = u.rk`,
      columns(updates, (o) => [o.rk, o.version, o.lastUpdated, o.deleted, o.json]),
    );
    for (const table of INDEX_TABLES) await tx.query(`DELETE FROM ${table} WHERE rk = ANY($1::bigint[])`, [rks]);
  }

  await insertIndexRows(tx, ops);
}

const INDEX_TABLES = ['idx_token', 'idx_string', 'idx_date', 'idx_ref', 'idx_number'] as const;

async function insertIndexRows(tx: SqlExecutor, ops: WriteOp[]): Promise<void> {
  const token: unknown[][] = [[], [], [], []];
  const string: unknown[][] = [[], [], [], []];
  const date: unknown[][] = [[], [], [], []];
  const ref: unknown[][] = [[], [], [], []];
  const num: unknown[][] = [[], [], [], [], []];
  for (const o of ops) {
    if (!o.index) continue;
    const rk = o.rk;
    for (const t of o.index.token) push(token, rk, t.p, t.system, t.code);
    for (const s of o.index.string) push(string, rk, s.p, s.value, s.raw);
    for (const d of o.index.date) push(date, rk, d.p, d.lo, d.hi);
    for (const r of o.index.reference) push(ref, rk, r.p, r.targetType, r.targetId);
    for (const n of o.index.number) push(num, rk, n.p, n.value, n.system, n.code);
  }
  const inserts: [string, unknown[][]][] = [
    ['INSERT INTO idx_token (rk, p, sys, code) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])', token],
    ['INSERT INTO idx_string (rk, p, v, raw) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])', string],
    ['INSERT INTO idx_date (rk, p, lo, hi) SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[])', date],
    ['INSERT INTO idx_ref (rk, p, ttype, tid) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])', ref],
    ['INSERT INTO idx_number (rk, p, v, sys, code) SELECT * FROM unnest($1::bigint[], $2::text[], $3::numeric[], $4::text[], $5::text[])', num],
  ];
  for (const [sql, cols] of inserts) if (cols[0].length > 0) await tx.query(sql, cols);
}

function push(cols: unknown[][], ...values: unknown[]): void {
  for (let i = 0; i < values.length; i++) cols[i].push(values[i]);
}

function columns<T>(items: T[], pick: (item: T) => unknown[]): unknown[][] {
  const first = pick(items[0]);
  const cols: unknown[][] = first.map(() => []);
  for (const item of items) push(cols, ...pick(item));
  return cols;
}
