import type { SqlExecutor } from './db/database';

/** The single-row state tables whose `owner` and `lease_until` let one process at a time run a loop. */
export type LeasedState = 'forward_state' | 'notify_state';

/**
 * One runner at a time across processes: the lease on `table` is taken (or kept) by `owner`
 * for `seconds`; false when another holds it. A runner that dies loses it when it runs out.
 */
export async function takeLease(sql: SqlExecutor, table: LeasedState, owner: string, seconds: number): Promise<boolean> {
  const rows = await sql.query(
    `UPDATE ${table} SET owner = $1, lease_until = now() + make_interval(secs => $2)
     WHERE owner = $1 OR owner IS NULL OR lease_until < now() RETURNING owner`,
    [owner, seconds],
  );
  return rows.length > 0;
}

export async function releaseLease(sql: SqlExecutor, table: LeasedState, owner: string): Promise<void> {
  await sql.query(`UPDATE ${table} SET owner = NULL, lease_until = NULL WHERE owner = $1`, [owner]);
}
