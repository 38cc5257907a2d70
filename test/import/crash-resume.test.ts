import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { REDIS_URL } from '../support/ingest';
import { openTestStore, type TestStore } from '../support/stores';

const ROWS = 100_000;
const ROOT = resolve(__dirname, '../..');

/** 100,000 Observations as FHIR NDJSON, written to disk a line at a time. */
async function writeFile(path: string): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < ROWS; i++) {
    const line = JSON.stringify({ resourceType: 'Observation', id: `cr-${i}`, status: 'final', code: { text: '体重' }, subject: { reference: `Patient/cr-p${i % 500}` }, valueQuantity: { value: 50 + (i % 40), unit: 'kg' } });
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/**
 * The import CLI as an operator runs it, killed with SIGKILL twice mid-import and started
 * again each time with the same command: every row ends up stored exactly once.
 */
describe('an import killed twice and resumed (PostgreSQL, Redis, the CLI in its own process)', () => {
  let store: TestStore;
  let dir: string;
  let file: string;
  const prefix = `{test-${randomBytes(4).toString('hex')}}`;
  beforeAll(async () => {
    store = await openTestStore('postgres');
    dir = mkdtempSync(join(tmpdir(), 'crash-resume-'));
    file = join(dir, 'observations.ndjson');
    await writeFile(file);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (): { child: ChildProcess; exit: Promise<number | null>; output: () => string } => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/import-cli.ts', '--format', 'ndjson', file], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: store.databaseUrl, REDIS_URL, QUEUE_PREFIX: prefix, DATA_DIR: join(dir, 'data'), IMPORT_CONCURRENCY: '3' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let text = '';
    child.stderr!.on('data', (b: Buffer) => (text += b.toString()));
    return { child, exit: once(child, 'exit').then(([code]) => code as number | null), output: () => text };
  };
  const stored = async (): Promise<number> => Number((await store.db.query<{ n: string }>(`SELECT coalesce(sum(done), 0) AS n FROM import_chunk`))[0].n);
  const killWhen = async (atLeast: number): Promise<void> => {
    const r = run();
    for (;;) {
      if ((await stored()) >= atLeast) break;
      if (r.child.exitCode !== null) throw new Error(`the import ended before it was killed: ${r.output()}`);
      await new Promise((s) => setTimeout(s, 100));
    }
    r.child.kill('SIGKILL');
    await r.exit;
  };

  it('stores every row once: no row lost, none doubled, nothing written twice', async () => {
    await killWhen(20_000);
    const afterFirst = await stored();
    await killWhen(afterFirst + 25_000);
    expect(await stored()).toBeLessThan(ROWS);
    const last = run();
    expect(await last.exit).toBe(0);
    expect(last.output()).toMatch(/resuming/);
    expect(last.output()).toMatch(/done: 100,000 records read, 100,000 stored, 0 failed/);

    const [job] = await store.db.query<{ state: string; read_records: number }>(`SELECT state, read_records::int FROM import_job`);
    expect(job).toEqual({ state: 'done', read_records: ROWS });
    // Each record was chunked once (the checkpoint held across kills) and each chunk applied once.
    const [chunks] = await store.db.query<{ size: number; done: number; pending: number }>(
      `SELECT sum(size)::int AS size, sum(done)::int AS done, (count(*) FILTER (WHERE finished_at IS NULL))::int AS pending FROM import_chunk`,
    );
    expect(chunks).toEqual({ size: ROWS, done: ROWS, pending: 0 });
    const [resources] = await store.db.query<{ n: number; rewritten: number; history: number }>(
      `SELECT count(*)::int AS n, (count(*) FILTER (WHERE version > 1))::int AS rewritten, (SELECT count(*) FROM resource_history)::int AS history FROM resource WHERE type = 'Observation'`,
    );
    expect(resources).toEqual({ n: ROWS, rewritten: 0, history: 0 });

    // The same command once more: already imported, nothing changes.
    const again = run();
    expect(await again.exit).toBe(0);
    expect(again.output()).toMatch(/already imported/);
    expect((await store.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM resource_history`))[0].n).toBe(0);
  }, 300_000);
});
