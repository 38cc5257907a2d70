import type { OperationOutcome } from '@medplum/fhirtypes';
import type { SqlExecutor } from './db/database';

/** csv: a registered source's CSV; hl7v2: a batch file of messages; ndjson: FHIR resources, one per line. */
export type ImportFormat = 'csv' | 'hl7v2' | 'ndjson';

export type ImportState = 'reading' | 'applying' | 'done' | 'cancelled' | 'failed';

/** One record of a file: where it starts (1-based line) and its text (HL7 already decoded). */
export interface ImportRecord {
  line: number;
  raw: string;
  /** Why the reader could not even decode the record (an HL7 message in an unknown charset); it fails as it is. */
  unreadable?: string;
}

export interface NewImport {
  id: string;
  /** Same file, source and format: same key (see import_job in the migrations). */
  key: string;
  format: ImportFormat;
  source?: string;
  /** The file's character set when it is not UTF-8 (an HL7 message's own MSH-18 is read otherwise). */
  charset?: string;
  /** The facility the records are written for; unset with `unrestricted` (the consortium office). */
  facility?: string;
  unrestricted: boolean;
  clientId?: string;
  filePath: string;
  fileBytes: number;
}

export interface ImportJob extends NewImport {
  state: ImportState;
  readRecords: number;
  readBytes: number;
  readComplete: boolean;
  createdAt: string;
  finishedAt: string | null;
  outcome: OperationOutcome | null;
}

export interface ImportProgress {
  /** Records read so far; the file's total once `readComplete`. */
  read: number;
  done: number;
  failed: number;
  /** Records finished (done or failed) per second since the import last (re)started. */
  rate: number;
  /** Records the file holds, estimated from the bytes read until it is read to the end. */
  total: number;
  /** Seconds left at `rate`; undefined before a rate is known. */
  eta?: number;
}

export interface ImportError {
  line: number;
  raw: string;
  outcome: OperationOutcome;
}

interface JobRow {
  id: string;
  import_key: string;
  format: ImportFormat;
  source: string | null;
  charset: string | null;
  facility: string | null;
  unrestricted: boolean;
  client_id: string | null;
  file_path: string;
  file_bytes: string | number;
  state: ImportState;
  read_records: string | number;
  read_bytes: string | number;
  read_complete: boolean;
  created_at: Date | string;
  finished_at: Date | string | null;
  outcome: OperationOutcome | null;
}

const JOB_COLUMNS =
  'id, import_key, format, source, charset, facility, unrestricted, client_id, file_path, file_bytes, state, read_records, read_bytes, read_complete, created_at, finished_at, outcome';

function fromRow(r: JobRow): ImportJob {
  return {
    id: r.id,
    key: r.import_key,
    format: r.format,
    ...(r.source !== null && { source: r.source }),
    ...(r.charset !== null && { charset: r.charset }),
    ...(r.facility !== null && { facility: r.facility }),
    unrestricted: r.unrestricted,
    ...(r.client_id !== null && { clientId: r.client_id }),
    filePath: r.file_path,
    fileBytes: Number(r.file_bytes),
    state: r.state,
    readRecords: Number(r.read_records),
    readBytes: Number(r.read_bytes),
    readComplete: r.read_complete,
    createdAt: new Date(r.created_at).toISOString(),
    finishedAt: r.finished_at === null ? null : new Date(r.finished_at).toISOString(),
    outcome: r.outcome,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The import log, in the store's database beside the ingest log. Chunks are the unit of
 * work and of recovery: a chunk's records stay here until a worker has applied them, in the
 * same transaction as the resources they became.
 */
export const importLog = {
  /** Creates the import, or returns the one already made for the same key (`created` false). */
  async open(sql: SqlExecutor, n: NewImport): Promise<{ job: ImportJob; created: boolean }> {
    const rows = await sql.query<JobRow>(
      `INSERT INTO import_job (id, import_key, format, source, charset, facility, unrestricted, client_id, file_path, file_bytes, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'reading') ON CONFLICT (import_key) DO NOTHING RETURNING ${JOB_COLUMNS}`,
      [n.id, n.key, n.format, n.source ?? null, n.charset ?? null, n.facility ?? null, n.unrestricted, n.clientId ?? null, n.filePath, n.fileBytes],
    );
    if (rows[0]) return { job: fromRow(rows[0]), created: true };
    const existing = await sql.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM import_job WHERE import_key = $1`, [n.key]);
    return { job: fromRow(existing[0]), created: false };
  },

  async get(sql: SqlExecutor, id: string): Promise<ImportJob | undefined> {
    if (!UUID.test(id)) return undefined;
    const rows = await sql.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM import_job WHERE id = $1`, [id]);
    return rows[0] && fromRow(rows[0]);
  },

  /** Imports a reader or a worker still has to finish: resumed at start. */
  async unfinished(sql: SqlExecutor): Promise<ImportJob[]> {
    const rows = await sql.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM import_job WHERE state IN ('reading', 'applying') ORDER BY created_at`);
    return rows.map(fromRow);
  },

  /** A cancelled or failed import asked for again carries on where it stopped. */
  async reopen(sql: SqlExecutor, id: string): Promise<void> {
    await sql.query(
      `UPDATE import_job SET state = CASE WHEN read_complete THEN 'applying' ELSE 'reading' END, finished_at = NULL, outcome = NULL
       WHERE id = $1 AND state IN ('cancelled', 'failed')`,
      [id],
    );
  },

  /** Starts the rate over (a resumed import's rate is that of this run), and points the file at where it now is. */
  async resume(sql: SqlExecutor, id: string, filePath: string): Promise<void> {
    await sql.query(
      `UPDATE import_job SET resumed_at = now(), file_path = $2,
         finished_at_resume = (SELECT coalesce(sum(done + failed), 0) FROM import_chunk WHERE import_id = $1)
       WHERE id = $1`,
      [id, filePath],
    );
  },

  /** Stores a chunk and moves the reader's checkpoint past it, in one transaction (`sql`); false when the import is no longer reading. */
  async addChunk(sql: SqlExecutor, id: string, seq: number, records: ImportRecord[], readBytes: number): Promise<boolean> {
    const updated = await sql.query<{ id: string }>(
      `UPDATE import_job SET read_records = read_records + $2, read_bytes = $3 WHERE id = $1 AND state = 'reading' RETURNING id`,
      [id, records.length, readBytes],
    );
    if (updated.length === 0) return false;
    await sql.query(`INSERT INTO import_chunk (import_id, seq, records, size) VALUES ($1, $2, $3::jsonb, $4)`, [id, seq, JSON.stringify(records), records.length]);
    return true;
  },

  async completeRead(sql: SqlExecutor, id: string): Promise<void> {
    await sql.query(`UPDATE import_job SET read_complete = true, read_bytes = file_bytes, state = 'applying' WHERE id = $1 AND state = 'reading'`, [id]);
  },

  /** Locks a chunk for its worker; its records, or undefined when it is already applied or gone. */
  async lockChunk(sql: SqlExecutor, id: string, seq: number): Promise<ImportRecord[] | undefined> {
    const rows = await sql.query<{ records: ImportRecord[] | null; finished_at: unknown }>(
      `SELECT c.records, c.finished_at FROM import_chunk c JOIN import_job j ON j.id = c.import_id
       WHERE c.import_id = $1 AND c.seq = $2 AND j.state IN ('reading', 'applying') FOR UPDATE OF c`,
      [id, seq],
    );
    const row = rows[0];
    return row && row.finished_at === null && row.records ? row.records : undefined;
  },

  /** Marks a chunk applied and forgets its records (the file and the resources hold them now). */
  async finishChunk(sql: SqlExecutor, id: string, seq: number, done: number, errors: ImportError[]): Promise<void> {
    if (errors.length > 0) {
      await sql.query(
        `INSERT INTO import_error (import_id, line, raw, outcome)
         SELECT $1, line, raw, outcome::jsonb FROM unnest($2::bigint[], $3::text[], $4::text[]) AS e(line, raw, outcome)
         ON CONFLICT (import_id, line) DO UPDATE SET raw = excluded.raw, outcome = excluded.outcome`,
        [id, errors.map((e) => e.line), errors.map((e) => e.raw), errors.map((e) => JSON.stringify(e.outcome))],
      );
    }
    await sql.query(`UPDATE import_chunk SET records = NULL, done = $3, failed = $4, finished_at = now() WHERE import_id = $1 AND seq = $2`, [
      id,
      seq,
      done,
      errors.length,
    ]);
  },

  /** Done once the file is read and every chunk applied; true when this call finished it. */
  async finishIfComplete(sql: SqlExecutor, id: string): Promise<boolean> {
    const rows = await sql.query(
      `UPDATE import_job SET state = 'done', finished_at = now()
       WHERE id = $1 AND state = 'applying' AND read_complete
         AND NOT EXISTS (SELECT 1 FROM import_chunk WHERE import_id = $1 AND finished_at IS NULL) RETURNING id`,
      [id],
    );
    return rows.length > 0;
  },

  /** Chunks written but not yet applied, in file order (their jobs may have been lost). */
  async pendingChunks(sql: SqlExecutor, id: string): Promise<number[]> {
    const rows = await sql.query<{ seq: number }>(`SELECT seq FROM import_chunk WHERE import_id = $1 AND finished_at IS NULL ORDER BY seq`, [id]);
    return rows.map((r) => r.seq);
  },

  /** The sequence number the next chunk gets. */
  async nextSeq(sql: SqlExecutor, id: string): Promise<number> {
    const rows = await sql.query<{ n: number | null }>(`SELECT max(seq) AS n FROM import_chunk WHERE import_id = $1`, [id]);
    return rows[0].n === null ? 0 : Number(rows[0].n) + 1;
  },

  /** The number of chunks written and not applied (the reader waits when the workers fall behind); undefined once the import is not reading. */
  async backlog(sql: SqlExecutor, id: string): Promise<number | undefined> {
    const rows = await sql.query<{ state: ImportState; n: string | number }>(
      `SELECT j.state, (SELECT count(*) FROM import_chunk c WHERE c.import_id = j.id AND c.finished_at IS NULL) AS n FROM import_job j WHERE j.id = $1`,
      [id],
    );
    return rows[0]?.state === 'reading' ? Number(rows[0].n) : undefined;
  },

  async progress(sql: SqlExecutor, job: ImportJob): Promise<ImportProgress> {
    const rows = await sql.query<{ done: string | number; failed: string | number; base: string | number; seconds: number | string }>(
      `SELECT coalesce(sum(c.done), 0) AS done, coalesce(sum(c.failed), 0) AS failed, j.finished_at_resume AS base,
              extract(epoch FROM (coalesce(j.finished_at, now()) - j.resumed_at)) AS seconds
       FROM import_job j LEFT JOIN import_chunk c ON c.import_id = j.id WHERE j.id = $1 GROUP BY j.id`,
      [job.id],
    );
    const done = Number(rows[0]?.done ?? 0);
    const failed = Number(rows[0]?.failed ?? 0);
    const seconds = Number(rows[0]?.seconds ?? 0);
    const sinceResume = done + failed - Number(rows[0]?.base ?? 0);
    const rate = seconds > 0 ? sinceResume / seconds : 0;
    const total = job.readComplete || job.readBytes === 0 ? job.readRecords : Math.round((job.readRecords * job.fileBytes) / job.readBytes);
    const left = Math.max(0, total - done - failed);
    return { read: job.readRecords, done, failed, rate, total, ...(rate > 0 && { eta: left / rate }) };
  },

  /** Stops an import: the reader and the workers see the state and leave what is left. */
  async cancel(sql: SqlExecutor, id: string): Promise<boolean> {
    const rows = await sql.query(`UPDATE import_job SET state = 'cancelled', finished_at = now() WHERE id = $1 AND state IN ('reading', 'applying') RETURNING id`, [id]);
    return rows.length > 0;
  },

  /** The import cannot go on (its file is gone or unreadable): the reason is kept. */
  async fail(sql: SqlExecutor, id: string, outcome: OperationOutcome): Promise<void> {
    await sql.query(`UPDATE import_job SET state = 'failed', finished_at = now(), outcome = $2::jsonb WHERE id = $1 AND state IN ('reading', 'applying')`, [
      id,
      JSON.stringify(outcome),
    ]);
  },

  /** Rows that failed, in file order, after `afterLine`. */
  async errors(sql: SqlExecutor, id: string, afterLine: number, limit: number): Promise<ImportError[]> {
    const rows = await sql.query<{ line: string | number; raw: string; outcome: OperationOutcome }>(
      `SELECT line, raw, outcome FROM import_error WHERE import_id = $1 AND line > $2 ORDER BY line LIMIT $3`,
      [id, afterLine, limit],
    );
    return rows.map((r) => ({ line: Number(r.line), raw: r.raw, outcome: r.outcome }));
  },
};
