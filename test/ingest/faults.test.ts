import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { resolve } from 'node:path';
import Redis from 'ioredis';
import { oru, syntheticPatient } from '../../fixtures/synthetic/hl7';
import { requeueUnfinished } from '../../workers/recovery';
import { openIngestHarness, silent, type IngestHarness } from '../support/ingest';

const ROOT = resolve(__dirname, '../..');

/** Receives `n` ORU^R01 (8 results each) for n/5 patients, without any worker running. */
async function receiveLab(h: IngestHarness, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const receipt = await h.ingest.receiveHl7(Buffer.from(oru(syntheticPatient(i % Math.ceil(n / 5)), `${tag}-${i}`, `${tag}R${i}`, 8, i)));
    expect(receipt.code).toBe('AA');
    ids.push(receipt.messageId!);
  }
  return ids;
}

/** Exactly `n` Observations with one version each, and every message done. */
async function expectExactlyApplied(h: IngestHarness, ids: string[], tag: string): Promise<void> {
  const messages = await h.waitForFinished(ids, 60000);
  expect(messages.filter((m) => m.state !== 'done')).toEqual([]);
  const rows = await h.store.db.query<{ n: number; versions: number }>(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE version > 1)::int AS versions FROM resource
     WHERE type = 'Observation' AND content->'meta'->>'source' LIKE $1`,
    [`%#${tag}-%`],
  );
  expect(rows[0]).toEqual({ n: ids.length * 8, versions: 0 });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        res(true);
      }).on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on port ${port}`);
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

describe('ingest faults (PostgreSQL, Redis)', () => {
  it('a worker killed with SIGKILL mid-run and restarted leaves nothing lost and nothing doubled', async () => {
    const h = await openIngestHarness('postgres');
    const children: ChildProcess[] = [];
    const startChild = (): ChildProcess => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/worker.ts'], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: h.store.databaseUrl, REDIS_URL: h.redisUrl, QUEUE_PREFIX: h.prefix, LOG_LEVEL: 'silent', WORKER_CONCURRENCY: '4', PG_MAX_CONNECTIONS: '6' },
        stdio: 'ignore',
      });
      children.push(child);
      return child;
    };
    try {
      const ids = await receiveLab(h, 300, 'KILL');
      const first = startChild();
      // Kill it once it is visibly under way, but far from finished.
      for (let done = 0; done < 20; ) {
        await new Promise((r) => setTimeout(r, 20));
        done = (await h.store.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ingest_message WHERE state = 'done'`))[0].n;
      }
      first.kill('SIGKILL');
      await once(first, 'exit');
      const left = (await h.store.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ingest_message WHERE state = 'received'`))[0].n;
      expect(left).toBeGreaterThan(0);
      startChild();
      await expectExactlyApplied(h, ids, 'KILL');
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await h.close();
    }
  }, 60000);

  it('Redis flushed between receipt and processing: the recovery sweep queues everything again', async () => {
    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
    let h: IngestHarness | undefined;
    try {
      await waitForPort(port);
      await client.connect();
      h = await openIngestHarness('postgres', `redis://127.0.0.1:${port}`);
      const ids = await receiveLab(h, 50, 'FLUSH');
      expect(await h.queue.count()).toBe(50);
      await client.flushall();
      expect(await h.queue.count()).toBe(0);
      h.startWorker();
      // What a restarted gateway does first: queue every unfinished message again.
      expect(await requeueUnfinished(h.store.db, h.queue, new Date(), silent)).toBe(50);
      await expectExactlyApplied(h, ids, 'FLUSH');
    } finally {
      await h?.close();
      client.disconnect();
      redis.kill('SIGKILL');
    }
  }, 60000);
});
