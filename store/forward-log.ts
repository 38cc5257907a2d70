import type { SqlExecutor } from './db/database';
import { takeLease } from './lease';

/** A resource version waiting to be sent upstream; `content` null for a deletion. */
export interface PendingChange {
  seq: number;
  type: string;
  id: string;
  version: number;
  content: string | null;
  queuedAt: string;
}

/** The capture triggers (fixed names and events: nothing from a request reaches this DDL). */
const TRIGGERS = [
  ['forward_inserted', 'INSERT'],
  ['forward_updated', 'UPDATE'],
] as const;

const FORWARD_LOCK = 727_002;

/**
 * The forwarding outbox (see migration 6). Rows are only read once every transaction that
 * could still add an earlier one has ended, so the forwarder never skips past a change.
 */
export const forwardLog = {
  /**
   * Turns capture on for `upstream`. The first time, or for a new upstream, every current
   * version is queued too, so the upstream receives the whole record and not only what changes
   * from now on. Returns whether that baseline was queued. Run it in a transaction.
   */
  async enable(sql: SqlExecutor, upstream: string): Promise<boolean> {
    // Processes starting together must not race on the triggers' DDL.
    await sql.query('SELECT pg_advisory_xact_lock($1)', [FORWARD_LOCK]);
    for (const [name, event] of TRIGGERS) {
      await sql.query(`CREATE OR REPLACE TRIGGER ${name} AFTER ${event} ON resource REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION forward_capture()`);
    }
    const rows = await sql.query<{ upstream: string }>(`SELECT upstream FROM forward_state`);
    if (rows[0]?.upstream === upstream) return false;
    await sql.query(`DELETE FROM forward_outbox`);
    await sql.query(`INSERT INTO forward_state (upstream) VALUES ($1) ON CONFLICT (singleton) DO UPDATE SET upstream = excluded.upstream, owner = NULL, lease_until = NULL`, [upstream]);
    await sql.query(`INSERT INTO forward_outbox (type, id, version) SELECT type, id, version FROM resource ORDER BY last_updated, rk`);
    return true;
  },

  /** Turns capture off and forgets what was waiting: the gateway runs without an upstream now. Run it in a transaction. */
  async disable(sql: SqlExecutor): Promise<boolean> {
    await sql.query('SELECT pg_advisory_xact_lock($1)', [FORWARD_LOCK]);
    for (const [name] of TRIGGERS) await sql.query(`DROP TRIGGER IF EXISTS ${name} ON resource`);
    const rows = await sql.query(`DELETE FROM forward_state RETURNING upstream`);
    await sql.query(`DELETE FROM forward_outbox`);
    return rows.length > 0;
  },

  /** One forwarder at a time (store/lease.ts). */
  lease: (sql: SqlExecutor, owner: string, seconds: number): Promise<boolean> => takeLease(sql, 'forward_state', owner, seconds),

  /** The oldest committed changes, in the order they were written, each with the version's content. */
  async pending(sql: SqlExecutor, limit: number): Promise<PendingChange[]> {
    const rows = await sql.query<{ seq: string | number; type: string; id: string; version: number; content: string | null; queued_at: Date | string }>(
      `SELECT o.seq, o.type, o.id, o.version, o.queued_at,
              coalesce(CASE WHEN r.version = o.version THEN CASE WHEN r.deleted THEN NULL ELSE r.content::text END END,
                       CASE WHEN NOT h.deleted THEN h.content::text END) AS content
       FROM (SELECT * FROM forward_outbox WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY seq LIMIT $1) o
       JOIN resource r ON r.type = o.type AND r.id = o.id
       LEFT JOIN resource_history h ON h.rk = r.rk AND h.version = o.version AND r.version <> o.version
       ORDER BY o.seq`,
      [limit],
    );
    return rows.map((r) => ({ seq: Number(r.seq), type: r.type, id: r.id, version: r.version, content: r.content, queuedAt: new Date(r.queued_at).toISOString() }));
  },

  /** Changes the upstream has: gone from the outbox. */
  async sent(sql: SqlExecutor, seqs: number[]): Promise<void> {
    if (seqs.length > 0) await sql.query(`DELETE FROM forward_outbox WHERE seq = ANY($1::bigint[])`, [seqs]);
  },

  /** Changes waiting, and how long the oldest has waited (the lag). */
  async backlog(sql: SqlExecutor): Promise<{ waiting: number; lagSeconds: number }> {
    const rows = await sql.query<{ n: string | number; lag: string | number | null }>(
      `SELECT count(*) AS n, extract(epoch FROM now() - min(queued_at)) AS lag FROM forward_outbox`,
    );
    return { waiting: Number(rows[0].n), lagSeconds: rows[0].lag === null ? 0 : Number(rows[0].lag) };
  },
};
