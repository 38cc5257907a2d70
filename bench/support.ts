/** What the benchmarks share: percentiles, throwaway PostgreSQL databases, waiting for ingest. */
import { createValidator } from '../profiles/validator';
import { openStore, type OpenStore } from '../store/open';
import type { StoreOptions } from '../store/repository';
import { adminQuery } from '../test/support/stores';

/** The p-th percentile of ascending `sorted`. */
export const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** A new database `name` on the server of `adminUrl`, migrated and opened; drop it with adminQuery when done. */
export async function freshStore(adminUrl: string, name: string, options: StoreOptions = {}): Promise<{ store: OpenStore; url: string }> {
  await adminQuery(`CREATE DATABASE ${name}`, adminUrl);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const store = await openStore({ databaseUrl: url.toString(), maxConnections: 16 }, { validate: createValidator(), ...options });
  return { store, url: url.toString() };
}

/** Waits until the ingest log holds `expected` messages and none is waiting for the worker. */
export async function waitUntilApplied(store: OpenStore, expected: number): Promise<void> {
  for (;;) {
    const [r] = await store.db.query<{ waiting: number; total: number }>(
      `SELECT count(*) FILTER (WHERE state = 'received')::int AS waiting, count(*)::int AS total FROM ingest_message`,
    );
    if (r.total >= expected && r.waiting === 0) return;
    await new Promise((res) => setTimeout(res, 20));
  }
}
