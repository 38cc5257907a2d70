/** What the benchmarks share: percentiles, throwaway PostgreSQL databases, and HL7 v2 posting clients. */
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

/** `clients` concurrent clients POSTing `message(i)` to /ingest/hl7v2 for i < count (or until `until`), with each ACK's latency. */
export async function postHl7(base: string, token: string, clients: number, count: number, message: (i: number) => string, until?: number): Promise<{ latencies: number[]; sent: number }> {
  const latencies: number[] = [];
  let next = 0;
  const client = async (): Promise<void> => {
    for (;;) {
      if (until ? Date.now() > until : next >= count) return;
      const i = next++;
      const t = performance.now();
      const res = await fetch(`${base}/ingest/hl7v2`, { method: 'POST', headers: { 'content-type': 'application/hl7-v2', authorization: `Bearer ${token}` }, body: message(i) });
      const ack = await res.text();
      latencies.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`message ${i}: HTTP ${res.status} ${ack.replace(/\r/g, '\n')}`);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return { latencies, sent: latencies.length };
}
