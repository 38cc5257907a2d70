import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Database, SqlExecutor } from './database';

/** `dataDir` undefined means in memory (tests); otherwise the cluster persists there. */
export async function openPglite(dataDir?: string): Promise<Database> {
  const db = await PGlite.create(dataDir);
  const run = async <T>(c: PGlite | Transaction, sql: string, params?: unknown[]): Promise<T[]> =>
    (await c.query<T>(sql, params)).rows;
  return {
    kind: 'pglite',
    query: (sql, params) => run(db, sql, params),
    async exec(sql) {
      await db.exec(sql);
    },
    transaction: <T>(fn: (tx: SqlExecutor) => Promise<T>) =>
      db.transaction((tx) => fn({ query: (sql, params) => run(tx, sql, params) })),
    close: () => db.close(),
  };
}
