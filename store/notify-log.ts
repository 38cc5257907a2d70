import type { SqlExecutor } from './db/database';
import { takeLease } from './lease';
import { isKnownResourceType } from './search-params';

/** A resource version written since the dispatcher last looked, of a type some Subscription watches. */
export interface NotifyChange {
  seq: number;
  type: string;
  id: string;
  version: number;
}

/** A notification given up on after its last attempt, kept until the Subscription asks for it again. */
export interface DeadLetter {
  subscription: string;
  type: string;
  id: string;
  version: number;
  attempts: number;
  error: string;
  failedAt: string;
}

const NOTIFY_LOCK = 727_003;

/**
 * The notification outbox (see migration 8): written by a trigger in the writer's transaction,
 * read by one dispatcher at a time (workers/notify/dispatcher.ts), in write order, only once
 * every transaction that could still add an earlier row has ended.
 */
export const notifyLog = {
  /**
   * Captures the versions of `types` (and of Subscriptions, always) from now on: rewrites the
   * trigger's WHEN list when it differs. Returns whether it changed. Run it in a transaction:
   * a Subscription is set active only after this commits, so nothing it should see is missed.
   */
  async watch(sql: SqlExecutor, types: string[]): Promise<boolean> {
    const wanted = [...new Set(['Subscription', ...types])].sort();
    // Names go into DDL: only the resource types the store knows, which are plain words.
    for (const t of wanted) if (!isKnownResourceType(t) || !/^[A-Za-z]+$/.test(t)) throw new Error(`not a resource type: ${t}`);
    await sql.query('SELECT pg_advisory_xact_lock($1)', [NOTIFY_LOCK]);
    const [state] = await sql.query<{ watched: string[] }>('SELECT watched FROM notify_state');
    if (state.watched.join(',') === wanted.join(',')) return false;
    // The trigger's DDL waits for every write in flight (a long import chunk) and, waiting,
    // holds up every write after it: give up soon instead, and let the caller try again.
    await sql.query("SET LOCAL lock_timeout = '2s'");
    await sql.query(
      `CREATE OR REPLACE TRIGGER notify_captured AFTER INSERT OR UPDATE ON resource FOR EACH ROW
       WHEN (NEW.type IN (${wanted.map((t) => `'${t}'`).join(', ')})) EXECUTE FUNCTION notify_capture()`,
    );
    await sql.query('UPDATE notify_state SET watched = $1', [wanted]);
    return true;
  },

  lease: (sql: SqlExecutor, owner: string, seconds: number): Promise<boolean> => takeLease(sql, 'notify_state', owner, seconds),

  /** The oldest committed changes, in the order they were written. */
  async pending(sql: SqlExecutor, limit: number): Promise<NotifyChange[]> {
    const rows = await sql.query<{ seq: string | number; type: string; id: string; version: number }>(
      `SELECT seq, type, id, version FROM notify_outbox WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY seq LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({ seq: Number(r.seq), type: r.type, id: r.id, version: r.version }));
  },

  /** Changes matched and queued for delivery: gone from the outbox. */
  async done(sql: SqlExecutor, seqs: number[]): Promise<void> {
    if (seqs.length > 0) await sql.query('DELETE FROM notify_outbox WHERE seq = ANY($1::bigint[])', [seqs]);
  },

  async deadLetter(sql: SqlExecutor, d: Omit<DeadLetter, 'failedAt'>): Promise<void> {
    await sql.query(
      `INSERT INTO notify_dead_letter (subscription_id, type, id, version, attempts, error) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (subscription_id, type, id, version) DO UPDATE SET attempts = excluded.attempts, error = excluded.error, failed_at = now()`,
      [d.subscription, d.type, d.id, d.version, d.attempts, d.error],
    );
  },

  /** The dead letters of `subscriptions`, oldest first. */
  async deadLetters(sql: SqlExecutor, subscriptions: string[]): Promise<DeadLetter[]> {
    const rows = await sql.query<{ subscription_id: string; type: string; id: string; version: number; attempts: number; error: string; failed_at: Date | string }>(
      `SELECT * FROM notify_dead_letter WHERE subscription_id = ANY($1::text[]) ORDER BY failed_at, type, id, version`,
      [subscriptions],
    );
    return rows.map((r) => ({ subscription: r.subscription_id, type: r.type, id: r.id, version: r.version, attempts: r.attempts, error: r.error, failedAt: new Date(r.failed_at).toISOString() }));
  },

  /** Dead letters queued again (or whose Subscription is gone): forgotten. */
  async forget(sql: SqlExecutor, letters: Pick<DeadLetter, 'subscription' | 'type' | 'id' | 'version'>[]): Promise<void> {
    if (letters.length === 0) return;
    await sql.query(
      `DELETE FROM notify_dead_letter d USING unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS k(s, t, i, v)
       WHERE d.subscription_id = k.s AND d.type = k.t AND d.id = k.i AND d.version = k.v`,
      [letters.map((l) => l.subscription), letters.map((l) => l.type), letters.map((l) => l.id), letters.map((l) => l.version)],
    );
  },

  /** Changes waiting to be matched. */
  async backlog(sql: SqlExecutor): Promise<number> {
    const [r] = await sql.query<{ n: string | number }>('SELECT count(*) AS n FROM notify_outbox');
    return Number(r.n);
  },
};
