/**
 * bench/import: a generated lab CSV (the community centre's LIS export: one result per row,
 * seven common tests, residents interleaved), imported by `npm run import` in its own process
 * into a fresh PostgreSQL database. Prints rows/s (wall time of the command, start-up included) and the
 * import process's peak RSS, then runs bench/ingest in the same run for the rate of the same
 * pipeline one message at a time. `--ndjson-rows N` also imports N FHIR NDJSON Observations
 * (no mapper, no patient index) to show what the store path alone sustains.
 *
 *   npm run bench:import -- [--rows 1000000] [--patients 20000] [--ndjson-rows 0] [--ingest-messages 5000]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { randomName } from '../fixtures/synthetic/people';
import { Rng } from '../fixtures/synthetic/random';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    patients: { type: 'string', default: '20000' },
    'ndjson-rows': { type: 'string', default: '0' },
    'ingest-messages': { type: 'string', default: '5000' },
    'database-url': { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const ROWS = Number(args.rows);
const PATIENTS = Number(args.patients);
const ROOT = resolve(__dirname, '..');

async function write(path: string, lines: Iterable<string>): Promise<void> {
  const out = createWriteStream(path);
  for (const line of lines) if (!out.write(`${line}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

const TESTS = [
  ['GLU', '空腹血糖', 'mmol/L', '3.9-6.1', 3.5, 9],
  ['TC', '总胆固醇', 'mmol/L', '<5.2', 3, 7],
  ['TG', '甘油三酯', 'mmol/L', '<1.7', 0.5, 3],
  ['CR', '肌酐', 'umol/L', '57-111', 40, 160],
  ['ALT', '丙氨酸氨基转移酶', 'U/L', '9-50', 5, 90],
  ['UA', '尿酸', 'umol/L', '208-428', 150, 520],
  ['HBA1C', '糖化血红蛋白', '%', '4.0-6.0', 4, 10],
] as const;

interface Resident {
  name: string;
  sex: 1 | 2;
  birthDate: string;
}

/** Residents with the demo's synthetic names and birth dates, so the patient index sees realistic blocks. */
function residents(n: number): Resident[] {
  const rng = new Rng(20261202);
  return Array.from({ length: n }, () => {
    const sex = rng.chance(0.5) ? 'male' : 'female';
    const birth = new Date(Date.UTC(1935 + rng.int(0, 70), rng.int(0, 11), rng.int(1, 28))).toISOString().slice(0, 10);
    return { name: randomName(rng, sex).text, sex: sex === 'male' ? 1 : 2, birthDate: birth };
  });
}

/** The centre's LIS export: a result per row, residents interleaved as a dump sorted by date has them. */
function* labResults(rows: number, patients: number): Iterable<string> {
  const people = residents(patients);
  yield 'jyjgh,bgh,jmbh,xm,xb,csrq,cjsj,xmdm,xmmc,jg,dw,ckfw,ycbz';
  for (let i = 0; i < rows; i++) {
    const p = (i * 7919) % patients;
    const r = people[p];
    const [code, name, unit, range, low, high] = TESTS[i % TESTS.length];
    const value = low + (((i * 37) % 100) / 100) * (high - low);
    const day = `20${15 + (i % 10)}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`;
    yield `JYB${String(i).padStart(9, '0')},BGB${String(Math.floor(i / 7)).padStart(8, '0')},CB${String(p).padStart(7, '0')},${r.name},${r.sex},${r.birthDate},${day} 07:${String(i % 60).padStart(2, '0')}:00,${code},${name},${value.toFixed(1)},${unit},${range},${value > high * 0.8 ? 'H' : ''}`;
  }
}

function* observations(rows: number): Iterable<string> {
  for (let i = 0; i < rows; i++) {
    yield JSON.stringify({ resourceType: 'Observation', id: `bench-${i}`, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '14771-0' }] }, subject: { reference: `Patient/bench-p${i % 20000}` }, valueQuantity: { value: 4 + (i % 60) / 10, unit: 'mmol/L' } });
  }
}

/** Runs `npm run import` as an operator would; wall seconds, the import process's peak RSS (VmHWM, sampled until it exits) and its summary line. */
async function importFile(databaseUrl: string, dataDir: string, cliArgs: string[]): Promise<{ seconds: number; peakMb: number; summary: string }> {
  const started = performance.now();
  const child = spawn('npm', ['run', '--silent', 'import', '--', ...cliArgs], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: args['redis-url'], QUEUE_PREFIX: `{bench-${randomBytes(3).toString('hex')}}`, DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  let peak = 0;
  const sample = setInterval(() => {
    for (const pid of descendants(child.pid!)) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('import-cli.ts')) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
      } catch {
        // exited between samples
      }
    }
  }, 200);
  const [code] = await once(child, 'exit');
  clearInterval(sample);
  if (code !== 0) throw new Error(`import exited ${code}: ${output.slice(-500)}`);
  return { seconds: (performance.now() - started) / 1000, peakMb: peak, summary: output.trim().split('\n').pop() ?? '' };
}

/** npm starts a shell that starts node: the import process is a grandchild. */
function descendants(pid: number): number[] {
  let children: number[];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `bench_import_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: args['database-url'] });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(args['database-url']);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-import-'));
  try {
    console.log(`bench/import: ${ROWS.toLocaleString('en')} lab-result CSV rows (community-centre-a's LIS export) over ${PATIENTS.toLocaleString('en')} residents, PostgreSQL, 2 cores`);
    const csv = join(dir, 'lab-results.csv');
    await write(csv, labResults(ROWS, PATIENTS));
    const run = await withDatabase((url) => importFile(url, join(dir, 'data'), ['--source', 'community-centre-a', csv]));
    console.log(`csv import (npm run import, wall):      ${Math.round(ROWS / run.seconds).toLocaleString('en')} rows/s (${run.seconds.toFixed(1)} s), peak RSS ${Math.round(run.peakMb)} MB`);
    console.log(`  ${run.summary}`);
    const ndjsonRows = Number(args['ndjson-rows']);
    if (ndjsonRows > 0) {
      const nd = join(dir, 'observations.ndjson');
      await write(nd, observations(ndjsonRows));
      const r = await withDatabase((url) => importFile(url, join(dir, 'data-nd'), ['--format', 'ndjson', nd]));
      console.log(`ndjson import (no mapper, no MPI):      ${Math.round(ndjsonRows / r.seconds).toLocaleString('en')} rows/s (${r.seconds.toFixed(1)} s), peak RSS ${Math.round(r.peakMb)} MB`);
    }
    console.log(`bench/ingest in the same run (--messages ${args['ingest-messages']}):`);
    const ingest = spawn(process.execPath, ['--import', 'tsx', 'bench/ingest.ts', '--messages', args['ingest-messages']!, '--database-url', args['database-url']!, '--redis-url', args['redis-url']!], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    ingest.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await once(ingest, 'exit');
    for (const line of out.split('\n')) if (/applied end to end|store alone/.test(line)) console.log(`  ${line.trim()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
