import { attachWorkflows } from '../../workflows/attach';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Queue, Worker } from 'bullmq';
import pino from 'pino';
import { queueBoard } from '../../gateway/admin';
import { createApp } from '../../gateway/app';
import { IngestService } from '../../gateway/ingest/service';
import { messageLog, type StoredMessage } from '../../store/messages';
import { PreparedRecords } from '../../workers/prepared';
import { startIngestWorker } from '../../workers/ingest';
import { ingestQueue, redisConnection, type IngestJob } from '../../workers/queues';
import { loadSources, type SourceRegistry } from '../../workers/sources';
import type { PatientIndex } from '../../mpi';
import { testAuth } from './auth';
import { openIndexedStore } from './mpi';
import { pollUntil } from './poll';
import type { Driver, TestStore } from './stores';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DEMO_SOURCES = resolve(__dirname, '../../fixtures/demo-sources.json');
export const silent = pino({ level: 'silent' });

let sources: SourceRegistry | undefined;
export const demoSources = (): SourceRegistry => (sources ??= loadSources(DEMO_SOURCES));

export interface IngestHarness {
  store: TestStore & { mpi: PatientIndex };
  queue: Queue<IngestJob>;
  prefix: string;
  ingest: IngestService;
  app: ReturnType<typeof createApp>;
  redisUrl: string;
  startWorker(concurrency?: number): Worker<IngestJob>;
  /** Polls the ingest log until none of `ids` is still `received`. */
  waitForFinished(ids: string[], timeoutMs?: number): Promise<StoredMessage[]>;
  close(): Promise<void>;
}

/**
 * A fresh store, a queue of its own (unique prefix, so suites sharing one Redis never see
 * each other's jobs), the receipt service and the real app. No worker runs until asked.
 */
export async function openIngestHarness(driver: Driver, redisUrl = REDIS_URL): Promise<IngestHarness> {
  const store = await openIndexedStore(driver);
  attachWorkflows(store.repo); // as every gateway process does: referral forms meet the same rules as FHIR writes
  const prefix = `{test-${randomBytes(4).toString('hex')}}`;
  const connection = redisConnection(redisUrl);
  const queue = ingestQueue(connection, prefix);
  // As in the gateway process: its worker is handed what its receipt mapped.
  const prepared = new PreparedRecords();
  const ingest = new IngestService({ repo: store.repo, queue, sources: demoSources(), log: silent, prepared });
  const workers: Worker<IngestJob>[] = [];
  return {
    store,
    queue,
    prefix,
    ingest,
    redisUrl,
    app: createApp({ repo: store.repo, ingest, mpi: store.mpi, auth: await testAuth(), admin: queueBoard([queue], '/admin/queues') }),
    startWorker(concurrency = 4) {
      const w = startIngestWorker({ repo: store.repo, sources: demoSources(), log: silent, mpi: store.mpi, prepared }, { connection, concurrency, prefix });
      workers.push(w);
      return w;
    },
    async waitForFinished(ids, timeoutMs = 30000) {
      const all = await pollUntil(
        () => Promise.all(ids.map((id) => messageLog.get(store.db, id))),
        (messages) => messages.every((m) => m && m.state !== 'received'),
        timeoutMs,
        (messages) => `${messages.filter((m) => m?.state === 'received').length} of ${ids.length} messages still waiting`,
      );
      return all as StoredMessage[];
    },
    async close() {
      await closeQueue(queue, workers);
      await store.close();
    },
  };
}

/** Stops a suite's workers, then empties and closes its queue (its prefix is its own). */
export async function closeQueue(queue: Queue, workers: Worker[]): Promise<void> {
  for (const w of workers) await w.close();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
}
