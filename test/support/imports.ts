import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Queue, Worker } from 'bullmq';
import { createApp } from '../../gateway/app';
import type { PatientIndex } from '../../mpi';
import { importLog, type ImportJob } from '../../store/imports';
import type { ReaderOptions } from '../../workers/import/reader';
import { startImportWorker } from '../../workers/import/worker';
import { importQueue, redisConnection, type ImportJobData } from '../../workers/queues';
import { testAuth } from './auth';
import { closeQueue, demoSources, REDIS_URL, silent } from './ingest';
import { openIndexedStore } from './mpi';
import { pollUntil } from './poll';
import type { Driver, TestStore } from './stores';

export interface ImportHarness {
  store: TestStore & { mpi: PatientIndex };
  queue: Queue<ImportJobData>;
  app: ReturnType<typeof createApp>;
  /** The server's import folder (IMPORT_DIR), a fresh temporary directory. */
  importDir: string;
  /** Where uploads are kept while imported. */
  uploadDir: string;
  startWorker(reader?: ReaderOptions, concurrency?: number): Worker<ImportJobData>;
  /** Polls until the import is no longer reading or applying. */
  waitFor(id: string, timeoutMs?: number): Promise<ImportJob>;
  close(): Promise<void>;
}

/** A fresh store, an import queue of its own (unique prefix), the real app with its auth, and temporary folders. */
export async function openImportHarness(driver: Driver, opts: { maxUploadBytes?: number } = {}): Promise<ImportHarness> {
  const store = await openIndexedStore(driver, { access: { mrnSystems: demoSources().mrnSystems } });
  const prefix = `{test-${randomBytes(4).toString('hex')}}`;
  const connection = redisConnection(REDIS_URL);
  const queue = importQueue(connection, prefix);
  const dir = mkdtempSync(join(tmpdir(), 'imports-'));
  const importDir = join(dir, 'incoming');
  mkdirSync(importDir);
  const workers: Worker<ImportJobData>[] = [];
  const uploadDir = join(dir, 'uploads');
  const app = createApp({ repo: store.repo, mpi: store.mpi, auth: await testAuth(), imports: { queue, sources: demoSources(), uploadDir, importDir, maxUploadBytes: opts.maxUploadBytes } });
  return {
    store,
    queue,
    app,
    importDir,
    uploadDir,
    startWorker(reader, concurrency = 3) {
      const w = startImportWorker({ repo: store.repo, sources: demoSources(), log: silent, mpi: store.mpi, queue }, { connection, concurrency, prefix, reader });
      workers.push(w);
      return w;
    },
    async waitFor(id, timeoutMs = 60000) {
      const job = await pollUntil(
        () => importLog.get(store.db, id),
        (j) => j !== undefined && j.state !== 'reading' && j.state !== 'applying',
        timeoutMs,
        (j) => `import ${id} still ${j?.state}`,
      );
      return job!;
    },
    async close() {
      await closeQueue(queue, workers);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
