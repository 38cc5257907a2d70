/**
 * The only thing the store needs from a database: parameterised queries, transactions and
 * multi-statement DDL. Both drivers speak the same SQL, so everything above this file is
 * written once.
 */
export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Database extends SqlExecutor {
  readonly kind: 'pg' | 'pglite';
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** PostgreSQL error codes worth retrying a whole transaction for. */
const RETRYABLE = new Set(['40001', '40P01', '23505']);

export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && RETRYABLE.has((err as { code?: string }).code ?? '');
}

/**
 * Runs `fn` in a transaction, retrying on serialization failures, deadlocks and unique
 * violations: two writers that raced to create the same id both succeed, the second as an
 * update, instead of one of them getting a 500.
 */
export async function inTransaction<T>(db: Database, fn: (tx: SqlExecutor) => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      if (attempt >= attempts || !isRetryable(err)) throw err;
    }
  }
}
