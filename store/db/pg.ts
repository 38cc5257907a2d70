import { Pool, types, type PoolClient } from 'pg';
import type { Database, SqlExecutor } from './database';

// bigint keys fit in a double for any table this store will hold; keep them numbers as PGlite does.
types.setTypeParser(types.builtins.INT8, (v) => Number(v));

export function openPostgres(connectionString: string, maxConnections = 10): Database {
  const pool = new Pool({ connectionString, max: maxConnections });
  // An idle client losing its connection must not crash the process.
  pool.on('error', () => undefined);
  const run = async <T>(c: Pool | PoolClient, sql: string, params?: unknown[]): Promise<T[]> =>
    (await c.query(sql, params as unknown[])).rows as T[];
  return {
    kind: 'pg',
    query: (sql, params) => run(pool, sql, params),
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({ query: (sql, params) => run(client, sql, params) });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
