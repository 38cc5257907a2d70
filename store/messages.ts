import type { OperationOutcome } from '@medplum/fhirtypes';
import type { SqlExecutor } from './db/database';

/** received: stored, waiting for a worker; done: applied; failed: can never apply as it is. */
export type MessageState = 'received' | 'done' | 'failed';

export interface NewMessage {
  id: string;
  source: string;
  /** 'ADT^A04', 'ORU^R01', 'jy', 'followup', ... */
  kind: string;
  /** The sender's id for the record (MSH-10, report number); never an MRN. */
  controlId?: string;
  charset?: string;
  body: Buffer;
  patientKey?: string;
  state: 'received' | 'failed';
  outcome?: OperationOutcome;
}

export interface StoredMessage {
  id: string;
  seq: number;
  source: string;
  kind: string;
  controlId: string | null;
  receivedAt: string;
  charset: string | null;
  body: Buffer;
  patientKey: string | null;
  state: MessageState;
  attempts: number;
  finishedAt: string | null;
  outcome: OperationOutcome | null;
  resources: string[] | null;
  unmapped: { system: string; code: string; kind: string; display?: string }[] | null;
}

export interface MessageResult {
  state: 'done' | 'failed';
  outcome?: OperationOutcome;
  resources?: string[];
  unmapped?: StoredMessage['unmapped'];
}

interface Row {
  id: string;
  seq: string | number;
  source: string;
  kind: string;
  control_id: string | null;
  received_at: Date | string;
  charset: string | null;
  body: Buffer | Uint8Array;
  patient_key: string | null;
  state: MessageState;
  attempts: number;
  finished_at: Date | string | null;
  outcome: OperationOutcome | null;
  resources: string[] | null;
  unmapped: StoredMessage['unmapped'];
}

const COLUMNS = 'id, seq, source, kind, control_id, received_at, charset, body, patient_key, state, attempts, finished_at, outcome, resources, unmapped';

const iso = (v: Date | string | null): string | null => (v === null ? null : new Date(v).toISOString());

function fromRow(r: Row): StoredMessage {
  return {
    id: r.id,
    seq: Number(r.seq),
    source: r.source,
    kind: r.kind,
    controlId: r.control_id,
    receivedAt: iso(r.received_at)!,
    charset: r.charset,
    body: Buffer.from(r.body),
    patientKey: r.patient_key,
    state: r.state,
    attempts: r.attempts,
    finishedAt: iso(r.finished_at),
    outcome: r.outcome,
    resources: r.resources,
    unmapped: r.unmapped,
  };
}

/**
 * The ingest log, in the store's database: a record is written here, and committed, before
 * its sender is acknowledged, so a lost queue loses nothing. Every method takes the executor
 * to run on, so the worker can record a message's fate in the same transaction as the
 * resources it wrote.
 */
export const messageLog = {
  /** Stores messages in one statement (a batch of receipts shares one commit). */
  async insert(sql: SqlExecutor, messages: NewMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
    for (const m of messages) {
      const values = [m.id, m.source, m.kind, m.controlId ?? null, m.charset ?? null, m.body.toString('hex'), m.patientKey ?? null, m.state, m.outcome ? JSON.stringify(m.outcome) : null];
      values.forEach((v, i) => cols[i].push(v));
    }
    await sql.query(
      `INSERT INTO ingest_message (id, source, kind, control_id, charset, body, patient_key, state, outcome, finished_at)
       SELECT id, source, kind, control_id, charset, decode(body, 'hex'), patient_key, state, outcome::jsonb,
              CASE WHEN state = 'failed' THEN now() END
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
         AS m(id, source, kind, control_id, charset, body, patient_key, state, outcome)`,
      cols,
    );
  },

  async get(sql: SqlExecutor, id: string): Promise<StoredMessage | undefined> {
    if (!UUID.test(id)) return undefined;
    const rows = await sql.query<Row>(`SELECT ${COLUMNS} FROM ingest_message WHERE id = $1`, [id]);
    return rows[0] && fromRow(rows[0]);
  },

  /**
   * Locks and returns, oldest first, the messages `ids` still waiting and, for each patient
   * key among them, that patient's earlier messages still waiting: a worker applying records
   * of a patient applies the earlier ones first. The caller holds the patients' locks.
   */
  async lockPending(sql: SqlExecutor, ids: string[]): Promise<StoredMessage[]> {
    const valid = ids.filter((id) => UUID.test(id));
    if (valid.length === 0) return [];
    const rows = await sql.query<Row>(
      `WITH upto AS (
         SELECT patient_key, max(seq) AS seq FROM ingest_message WHERE id = ANY($1::uuid[]) AND patient_key IS NOT NULL GROUP BY patient_key
       )
       SELECT ${COLUMNS} FROM ingest_message m
       WHERE m.state = 'received'
         AND (m.id = ANY($1::uuid[]) OR EXISTS (SELECT 1 FROM upto u WHERE u.patient_key = m.patient_key AND m.seq <= u.seq))
       ORDER BY m.seq FOR UPDATE OF m`,
      [valid],
    );
    return rows.map(fromRow);
  },

  async finish(sql: SqlExecutor, id: string, result: MessageResult): Promise<void> {
    await this.finishMany(sql, [{ id, ...result }]);
  },

  /** Records how messages ended, in one statement; a message no longer waiting is left as it is. */
  async finishMany(sql: SqlExecutor, results: (MessageResult & { id: string })[]): Promise<void> {
    if (results.length === 0) return;
    const cols: unknown[][] = [[], [], [], [], []];
    for (const r of results) [r.id, r.state, json(r.outcome), json(r.resources), json(r.unmapped?.length ? r.unmapped : undefined)].forEach((v, i) => cols[i].push(v));
    await sql.query(
      `UPDATE ingest_message m SET state = v.state, outcome = v.outcome::jsonb, resources = v.resources::jsonb, unmapped = v.unmapped::jsonb,
         finished_at = now(), attempts = m.attempts + 1
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS v(id, state, outcome, resources, unmapped)
       WHERE m.id = v.id AND m.state = 'received'`,
      cols,
    );
  },

  /** Starts a message over (`$replay`): received again with its new patient key, or failed with its new reason. */
  async reset(sql: SqlExecutor, id: string, verdict: Pick<NewMessage, 'state' | 'patientKey' | 'outcome'>): Promise<StoredMessage> {
    const rows = await sql.query<Row>(
      `UPDATE ingest_message SET state = $2, patient_key = $3, outcome = $4::jsonb, resources = NULL, unmapped = NULL,
         finished_at = CASE WHEN $2 = 'failed' THEN now() END
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, verdict.state, verdict.patientKey ?? null, json(verdict.outcome)],
    );
    return fromRow(rows[0]);
  },

  /** Messages received before `olderThan` and not finished, in arrival order after `afterSeq`. */
  async unfinished(sql: SqlExecutor, olderThan: Date, limit: number, afterSeq = 0): Promise<{ id: string; seq: number; patientKey: string | null }[]> {
    const rows = await sql.query<{ id: string; seq: string; patient_key: string | null }>(
      `SELECT id, seq, patient_key FROM ingest_message WHERE state = 'received' AND received_at <= $1 AND seq > $3 ORDER BY seq LIMIT $2`,
      [olderThan.toISOString(), limit, afterSeq],
    );
    return rows.map((r) => ({ id: r.id, seq: Number(r.seq), patientKey: r.patient_key }));
  },

  /** Per source: messages by state, failures by reason, the most frequent unmapped codes. */
  async quality(sql: SqlExecutor, topUnmapped = 10): Promise<SourceQuality[]> {
    const states = await sql.query<{ source: string; state: MessageState; n: string }>(
      `SELECT source, state, count(*) AS n FROM ingest_message GROUP BY source, state`,
    );
    const reasons = await sql.query<{ source: string; reason: string; n: string }>(
      `SELECT source, concat_ws(' at ', coalesce(outcome->'issue'->0->>'code', 'unknown'), outcome->'issue'->0->'expression'->>0) AS reason, count(*) AS n
       FROM ingest_message WHERE state = 'failed' GROUP BY 1, 2`,
    );
    const unmapped = await sql.query<{ source: string; system: string; code: string; kind: string; display: string | null; n: string }>(
      `SELECT source, system, code, kind, display, n FROM (
         SELECT source, u->>'system' AS system, u->>'code' AS code, u->>'kind' AS kind, max(u->>'display') AS display, count(*) AS n,
                row_number() OVER (PARTITION BY source ORDER BY count(*) DESC, u->>'code') AS rank
         FROM ingest_message, jsonb_array_elements(unmapped) AS u
         WHERE unmapped IS NOT NULL GROUP BY source, 2, 3, 4) t
       WHERE rank <= $1 ORDER BY source, n DESC, code`,
      [topUnmapped],
    );
    const bySource = new Map<string, SourceQuality>();
    const entry = (source: string): SourceQuality => {
      let q = bySource.get(source);
      if (!q) bySource.set(source, (q = { source, messages: 0, received: 0, done: 0, failed: 0, failuresByReason: {}, topUnmapped: [] }));
      return q;
    };
    for (const r of states) {
      const q = entry(r.source);
      q[r.state] = Number(r.n);
      q.messages += Number(r.n);
    }
    for (const r of reasons) entry(r.source).failuresByReason[r.reason] = Number(r.n);
    for (const r of unmapped) entry(r.source).topUnmapped.push({ system: r.system, code: r.code, kind: r.kind, ...(r.display ? { display: r.display } : {}), count: Number(r.n) });
    return [...bySource.values()].sort((a, b) => a.source.localeCompare(b.source));
  },
};

export interface SourceQuality {
  source: string;
  messages: number;
  received: number;
  done: number;
  failed: number;
  failuresByReason: Record<string, number>;
  topUnmapped: { system: string; code: string; kind: string; display?: string; count: number }[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
