import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { openStore, type OpenStore } from '../../store/open';
import type { StoreOptions } from '../../store/repository';
import { createValidator, type Validator } from '../../profiles/validator';

export type Driver = 'pglite' | 'postgres';
export const DRIVERS: Driver[] = ['pglite', 'postgres'];

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let validator: Validator | undefined;
export const sharedValidator = (): Validator => (validator ??= createValidator());

export interface TestStore extends OpenStore {
  driver: Driver;
  databaseUrl?: string;
}

/**
 * A fresh, empty store: PGlite in memory, or a new database on the test PostgreSQL server
 * (dropped again by `close`), so suites never see each other's data.
 */
export async function openTestStore(driver: Driver, options: StoreOptions = {}): Promise<TestStore> {
  if (driver === 'pglite') return { ...(await openStore({}, { validate: sharedValidator(), ...options })), driver };
  const name = `fhirtest_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const store = await openStore({ databaseUrl: url.toString(), maxConnections: 5 }, { validate: sharedValidator(), ...options });
  return {
    ...store,
    driver,
    databaseUrl: url.toString(),
    close: async () => {
      await store.close();
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Runs one statement (CREATE or DROP DATABASE) as the server's admin; the benchmarks use it with their own URL. */
export async function adminQuery(sql: string, adminUrl = ADMIN_URL): Promise<void> {
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
