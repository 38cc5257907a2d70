import type { AccessLabels, CareRelation } from './access-labels';
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
  /** A tombstone carries the labels of the version it deletes. */
  labels: AccessLabels;
  /** For a Consent: the Patient it opts out of sharing, or null when it does not (any more). */
  optOut?: string | null;
  /** For a Task: the care relationship it makes (a treatment while open, a disclosure once completed), or null when it makes none (any more). */
  care?: CareRelation | null;
}

/**
 * Writes a batch of resource versions and their index rows with a fixed number of statements
 * whatever the batch size, which is what makes a 100-entry transaction Bundle cheap. Each
 * statement gets its rows as one JSON document expanded by json_to_recordset: V8's native
 * JSON.stringify and PostgreSQL's JSON parser are several times cheaper than pg's escaping
 * of array literals. Must run inside a transaction; callers hold row locks on existing rows.
 */
export async function writeBatch(tx: SqlExecutor, ops: WriteOp[]): Promise<void> {
  const creates = ops.filter((o) => o.rk === undefined);
  const updates = ops.filter((o) => o.rk !== undefined);

  if (creates.length > 0) {
    const rows = await tx.query<{ rk: number; type: string; id: string }>(
      `INSERT INTO resource (type, id, version, last_updated, deleted, content, author, sensitive, patients)
       SELECT type, id, version, last_updated, deleted, content, author, sensitive, patients
       FROM json_to_recordset($1::json) AS x(${VERSION_COLUMNS})
       RETURNING rk, type, id`,
      [versionsJson(creates)],
    );
    const byKey = new Map(rows.map((r) => [`${r.type}/${r.id}`, r.rk]));
    for (const o of creates) o.rk = byKey.get(`${o.type}/${o.id}`);
  }

  if (updates.length > 0) {
    const rks = updates.map((o) => o.rk);
    await tx.query(
      `INSERT INTO resource_history (rk, type, id, version, last_updated, deleted, content, author, sensitive, patients)
       SELECT rk, type, id, version, last_updated, deleted, content, author, sensitive, patients FROM resource WHERE rk = ANY($1::bigint[])`,
      [rks],
    );
    await tx.query(
      `UPDATE resource r SET version = u.version, last_updated = u.last_updated, deleted = u.deleted, content = u.content,
         author = u.author, sensitive = u.sensitive, patients = u.patients
       FROM json_to_recordset($1::json) AS u(rk bigint, ${VERSION_COLUMNS})
       WHERE r.rk = u.rk`,
      [versionsJson(updates)],
    );
    await tx.query(`WITH ${INDEX_TABLES.map((t) => `d_${t} AS (DELETE FROM ${t} WHERE rk = ANY($1::bigint[]))`).join(', ')} SELECT 1`, [rks]);
  }

  await insertIndexRows(tx, ops);
  await recordOptOuts(tx, ops);
  await recordCare(tx, ops);
}

const VERSION_COLUMNS = 'type text, id text, version int, last_updated timestamptz, deleted boolean, content jsonb, author text, sensitive boolean, patients text[]';

/** Keeps access_optout in step with the Consents written: one statement, only when there are any. */
async function recordOptOuts(tx: SqlExecutor, ops: WriteOp[]): Promise<void> {
  const consents = ops.filter((o) => o.optOut !== undefined);
  if (consents.length === 0) return;
  const denying = consents.filter((o) => o.optOut);
  // The two halves touch disjoint consent ids, so one statement can hold both.
  await tx.query(
    `WITH gone AS (DELETE FROM access_optout WHERE consent_id = ANY($1::text[]) AND NOT consent_id = ANY($2::text[]))
     INSERT INTO access_optout (consent_id, patient_id) SELECT * FROM unnest($2::text[], $3::text[])
     ON CONFLICT (consent_id) DO UPDATE SET patient_id = EXCLUDED.patient_id`,
    [consents.map((o) => o.id), denying.map((o) => o.id), denying.map((o) => o.optOut)],
  );
}

/**
 * Keeps access_treatment and access_disclosure in step with the Tasks written, as recordOptOuts
 * does for Consents. A disclosure also takes the focus ServiceRequest's supportingInfo, read
 * here so that it is what the ServiceRequest carried when the Task completed.
 */
async function recordCare(tx: SqlExecutor, ops: WriteOp[]): Promise<void> {
  const tasks = ops.filter((o) => o.care !== undefined);
  if (tasks.length === 0) return;
  const open = tasks.filter((o) => o.care?.kind === 'treatment');
  await tx.query(
    `WITH gone AS (DELETE FROM access_treatment WHERE task_id = ANY($1::text[]) AND NOT task_id = ANY($2::text[]))
     INSERT INTO access_treatment (task_id, patient_id, facilities) SELECT x.task_id, x.patient_id, ARRAY(SELECT json_array_elements_text(x.facilities))
     FROM json_to_recordset($3::json) AS x(task_id text, patient_id text, facilities json)
     ON CONFLICT (task_id) DO UPDATE SET patient_id = EXCLUDED.patient_id, facilities = EXCLUDED.facilities`,
    [tasks.map((o) => o.id), open.map((o) => o.id), JSON.stringify(open.map((o) => ({ task_id: o.id, patient_id: o.care!.patient, facilities: o.care!.facilities })))],
  );
  const disclosed = tasks.filter((o) => o.care?.kind === 'disclosure');
  // A completed Task never changes again (workflows/referral/transitions.ts): what it disclosed is kept, not rewritten.
  await tx.query(
    `WITH gone AS (DELETE FROM access_disclosure WHERE task_id = ANY($1::text[]) AND NOT task_id = ANY($2::text[])),
     given AS (SELECT * FROM json_to_recordset($3::json) AS x(task_id text, facilities json, carried json, focus text))
     INSERT INTO access_disclosure (task_id, ref, facilities)
     SELECT DISTINCT g.task_id, c.ref, ARRAY(SELECT json_array_elements_text(g.facilities))
     FROM given g CROSS JOIN LATERAL (
       SELECT json_array_elements_text(g.carried) AS ref
       UNION SELECT s->>'reference' FROM resource sr CROSS JOIN LATERAL jsonb_array_elements(sr.content->'supportingInfo') s
       WHERE g.focus LIKE 'ServiceRequest/%' AND sr.type = 'ServiceRequest' AND sr.id = substr(g.focus, 16) AND NOT sr.deleted
     ) c
     WHERE c.ref ~ '^[A-Z][A-Za-z]+/[A-Za-z0-9.-]{1,64}$'
     ON CONFLICT (task_id, ref) DO NOTHING`,
    [tasks.map((o) => o.id), disclosed.map((o) => o.id), JSON.stringify(disclosed.map((o) => ({ task_id: o.id, facilities: o.care!.facilities, carried: o.care!.carried, focus: o.care!.focus ?? null })))],
  );
}

/** The versions as a JSON array, splicing each resource's already serialised text. */
function versionsJson(ops: WriteOp[]): string {
  return `[${ops
    .map(
      (o) =>
        `{"rk":${o.rk ?? 'null'},"type":${JSON.stringify(o.type)},"id":${JSON.stringify(o.id)},"version":${o.version},"last_updated":"${o.lastUpdated}","deleted":${o.deleted},"content":${o.json ?? 'null'},` +
        `"author":${JSON.stringify(o.labels.author)},"sensitive":${o.labels.sensitive},"patients":${JSON.stringify(o.labels.patients)}}`,
    )
    .join(',')}]`;
}

const INDEX_TABLES = ['idx_token', 'idx_string', 'idx_date', 'idx_ref', 'idx_number'] as const;

async function insertIndexRows(tx: SqlExecutor, ops: WriteOp[]): Promise<void> {
  const token: unknown[] = [];
  const string: unknown[] = [];
  const date: unknown[] = [];
  const ref: unknown[] = [];
  const num: unknown[] = [];
  for (const o of ops) {
    if (!o.index) continue;
    const rk = o.rk;
    for (const t of o.index.token) token.push([rk, t.p, t.system, t.code]);
    for (const s of o.index.string) string.push([rk, s.p, s.value, s.raw]);
    for (const d of o.index.date) date.push([rk, d.p, d.lo, d.hi]);
    for (const r of o.index.reference) ref.push([rk, r.p, r.targetType, r.targetId]);
    for (const n of o.index.number) num.push([rk, n.p, n.value, n.system, n.code]);
  }
  // Rows travel as JSON arrays of arrays (smaller than objects); ->> picks the columns.
  const inserts: [string, string[], unknown[]][] = [
    ['idx_token (rk, p, sys, code)', ['::bigint', '', '', ''], token],
    ['idx_string (rk, p, v, raw)', ['::bigint', '', '', ''], string],
    ['idx_date (rk, p, lo, hi)', ['::bigint', '', '::timestamptz', '::timestamptz'], date],
    ['idx_ref (rk, p, ttype, tid)', ['::bigint', '', '', ''], ref],
    ['idx_number (rk, p, v, sys, code)', ['::bigint', '', '::numeric', '', ''], num],
  ];
  // One statement for all five tables (data-modifying CTEs): a round trip per table would
  // cost more than the inserts themselves for a single message's dozen resources.
  const parts: string[] = [];
  const params: string[] = [];
  for (const [target, casts, rows] of inserts) {
    if (rows.length === 0) continue;
    params.push(JSON.stringify(rows));
    const cols = casts.map((cast, i) => `(e->>${i})${cast}`).join(', ');
    parts.push(`i${params.length} AS (INSERT INTO ${target} SELECT ${cols} FROM jsonb_array_elements($${params.length}::jsonb) AS e)`);
  }
  if (parts.length > 0) await tx.query(`WITH ${parts.join(', ')} SELECT 1`, params);
}
