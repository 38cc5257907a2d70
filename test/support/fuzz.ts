/**
 * What the fuzz suites share: one seed for the run (printed, so a CI failure can be replayed
 * with FUZZ_SEED), a stream per suite derived from it, hostile strings, and a tally that
 * keeps every failing case (not just the first) so one run shows the whole picture.
 */
import { mixSeed, Rng } from '../../fixtures/synthetic/random';

const DEFAULT_SEED = 20261202;

function runSeed(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`FUZZ_SEED must be a non-negative integer, got '${raw}'`);
  return n;
}

export const FUZZ_SEED = runSeed();

/** A suite's own stream: adding cases to one suite does not change what another generates. */
export function fuzzRng(suite: string): Rng {
  let h = 0;
  for (const c of suite) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return new Rng(mixSeed(FUZZ_SEED, h >>> 0));
}

const CHINESE = ['王小明', '李秀英', '血红蛋白', '葡萄糖', '云溪市第一人民医院', '𠀀𪚥', '李\u3000凯成'];
const FULL_WIDTH = ['ＷＡＮＧ', '１２３', '（）', '，', '：', '｜'];
const SQL = ["'", '"', ';', '--', '\\', '%', '_', "' OR '1'='1", "'; DROP TABLE resource; --", '$1', '::text', '\\\\', '%_%'];
const CONTROL = ['\u0000', 'a\u0000b', '\u0001', '\u001b[31m', '\r\n', '\t', '\u2028', '\ufeff', '\ufffd', '\u202e'];
const NUMBERS = ['0', '-0', '1e999', '-1e999', '1e-999', 'NaN', 'Infinity', '0x10', '1.', '.5', '9'.repeat(400), '1,5', '+-1', '١٢٣'];
const DATES = ['2024-13-45', '2024-02-30', '2024', '2024-03', '2024-03-01T25:00:00Z', '0000-01-01', '9999-12-31T23:59:59.999Z', '-2024', '2024-03-01T10:00:00+99:00', '20240301', 'today'];
const WORDS = ['', ' ', 'a', 'final', 'male', 'Patient/p-wang', 'p-wang', 'http://loinc.org|718-7', '|', 'a|b|c', '\\,', ',,', 'null', 'undefined', '[]', '{}'];

/** A string meant to break parsers: empty, huge, non-ASCII, SQL metacharacters, control characters, bad numbers and dates. */
export function hostileString(rng: Rng): string {
  const pool = rng.pick([CHINESE, FULL_WIDTH, SQL, CONTROL, NUMBERS, DATES, WORDS]);
  const base = rng.pick(pool);
  switch (rng.int(0, 10)) {
    case 0:
      return base.repeat(rng.int(100, 3000));
    case 3:
      // Long and incompressible: PostgreSQL compresses a repeated value below its index limits.
      return randomUnicode(rng, rng.int(3000, 12000)).replace(/[\ud800-\udfff]/g, '');
    case 1:
      return `${base}${hostileString(rng)}`;
    case 2:
      return randomUnicode(rng, rng.int(1, 40));
    default:
      return base;
  }
}

/** Code points from every plane, lone surrogates included. */
export function randomUnicode(rng: Rng, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    const range = rng.pick([[0x20, 0x7e], [0x0, 0x1f], [0x4e00, 0x9fff], [0xff01, 0xff5e], [0xd800, 0xdfff], [0x10000, 0x10ffff]]);
    s += String.fromCodePoint(rng.int(range[0], range[1]));
  }
  return s;
}

export interface FuzzFailure {
  case: number;
  input: string;
  problem: string;
}

/** Counts cases and keeps the failing ones, with their input cut to a readable length. */
export class FuzzTally {
  cases = 0;
  serverErrors = 0;
  readonly failures: FuzzFailure[] = [];

  private slowest = { ms: 0, input: '' };

  constructor(readonly suite: string) {}

  /** Notes a case's duration: the slowest one is shown with the counts. */
  took(ms: number, input: string): void {
    if (ms > this.slowest.ms) this.slowest = { ms, input: input.slice(0, 120) };
  }

  /** Numbers the next case. */
  next(): number {
    return ++this.cases;
  }

  fail(caseNo: number, input: string, problem: string, serverError = false): void {
    if (serverError) this.serverErrors++;
    this.failures.push({ case: caseNo, input: input.length > 300 ? `${input.slice(0, 300)}... (${input.length} chars)` : input, problem });
  }

  /** The line CI shows, and the failures in a form a test can assert empty. */
  report(): FuzzFailure[] {
    console.log(
      `fuzz: ${this.suite} ${this.cases} cases, ${this.serverErrors} server errors, ${this.failures.length} failures (FUZZ_SEED=${FUZZ_SEED})` +
        (this.slowest.input ? `; slowest ${Math.round(this.slowest.ms)} ms: ${this.slowest.input}` : ''),
    );
    return this.failures.slice(0, 20);
  }
}

/** Longest a fuzzed request may take before it counts as a hang. */
export const REQUEST_TIMEOUT_MS = 5000;

/**
 * What is wrong with a FHIR API answer, if anything: a 5xx, a body that is not JSON, a 2xx
 * that is not `expected`, a 4xx that is not an OperationOutcome or that shows a stack trace.
 */
export function fhirAnswerProblem(res: { status: number; text: string; headers: Record<string, string> }, expected: string): string | undefined {
  if (res.status >= 500) return `HTTP ${res.status}: ${res.text.slice(0, 200)}`;
  if (res.status === 204 && res.text === '') return undefined;
  if (!/application\/fhir\+json/.test(res.headers['content-type'] ?? '')) return `HTTP ${res.status} with Content-Type '${res.headers['content-type']}'`;
  let body: { resourceType?: string; issue?: { diagnostics?: string }[] };
  try {
    body = JSON.parse(res.text) as typeof body;
  } catch {
    return `HTTP ${res.status} with a body that is not JSON: ${res.text.slice(0, 100)}`;
  }
  if (res.status < 300) return body.resourceType === expected ? undefined : `HTTP ${res.status} answered a ${body.resourceType}, not a ${expected}`;
  if (body.resourceType !== 'OperationOutcome' || !body.issue?.length) return `HTTP ${res.status} without an OperationOutcome: ${res.text.slice(0, 200)}`;
  if (/at .*\.(ts|js):\d+/.test(res.text)) return `HTTP ${res.status} shows a stack trace`;
  if (!body.issue[0].diagnostics) return `HTTP ${res.status} OperationOutcome says nothing about what was wrong`;
  return undefined;
}
