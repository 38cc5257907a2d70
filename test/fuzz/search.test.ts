import type { Rng } from '../../fixtures/synthetic/random';
import { generateConsortium } from '../../fixtures/synthetic/consortium';
import { getParams, resourceTypes } from '../../store/search-params';
import { observations, patients, transaction } from '../support/fixtures';
import { fhirAnswerProblem, fuzzRng, FuzzTally, hostileString, REQUEST_TIMEOUT_MS } from '../support/fuzz';
import { agentFor, OFFICE } from '../support/auth';
import { startTestServer, type TestServer } from '../support/server';

const CASES = Number(process.env.FUZZ_SEARCH_CASES ?? 1500);
const FHIR = 'application/fhir+json';
const COMMON = ['Patient', 'Observation', 'Encounter', 'Condition', 'DiagnosticReport', 'MedicationRequest', 'Organization', 'Practitioner', 'ImagingStudy', 'ServiceRequest'];
const MODIFIERS = ['exact', 'contains', 'not', 'missing', 'above', 'below', 'mdm', 'text', 'in', 'identifier', 'Patient', 'Nonsense', '', '::', ':exact', '%00'];
const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap', 'zz', 'EQ', 'g', 'gtgt'];
const CONTROL: [string, (rng: Rng) => string][] = [
  ['_count', (rng) => rng.pick(['-1', '0', '1', '99999999', 'abc', '1.5', '1e3', '', '0x10', ' 5'])],
  ['_sort', (rng) => rng.pick(['', '-', '_id', '-_lastUpdated', 'nonsense', ',,', hostileString(rng)])],
  ['_include', (rng) => rng.pick(['*', 'Observation:subject', 'Observation:subject:Patient', 'Observation:subject:Nonsense', 'Patient:name', ':', '::', hostileString(rng)])],
  ['_revinclude', (rng) => rng.pick(['Observation:subject', 'Observation:patient:Group', '*', hostileString(rng)])],
  ['_include:iterate', (rng) => rng.pick(['Observation:subject', 'Patient:organization', hostileString(rng)])],
  ['_cursor', (rng) => (rng.chance(0.7) ? cursor(rng) : rng.pick(['', 'garbage', Buffer.from('{}').toString('base64url'), hostileString(rng)]))],
  ['_elements', (rng) => rng.pick(['', 'name', 'id,meta', 'nonsense', '__proto__', 'constructor', ',,,', hostileString(rng)])],
  ['_summary', (rng) => rng.pick(['count', 'data', 'text', 'false', 'true', 'garbage', ''])],
  ['_total', (rng) => rng.pick(['none', 'accurate', 'estimate', 'garbage'])],
  ['_id', (rng) => rng.pick(['p-wang', 'o1,o2', '', hostileString(rng)])],
  ['_lastUpdated', (rng) => `${rng.pick(PREFIXES)}${rng.pick(['2024', '2024-13-45', 'NaN', hostileString(rng)])}`],
  ['_format', () => 'json'],
  ['_since', (rng) => rng.pick(['2024', '2024-03-01T00:00:00Z', '99999', '-271821-04-20', '2024-13-45', '', hostileString(rng)])],
  ['_type', (rng) => rng.pick(['Observation', 'Observation,Encounter', 'Nonsense', '', hostileString(rng)])],
];
const CHAINS = ['subject:Patient.name', 'subject.name', 'patient.identifier', 'subject:Patient.organization.name', 'subject:Nonsense.name', 'subject:Patient.nonsense', 'subject..name', '.name', 'subject:Patient._id', 'patient._lastUpdated', 'encounter.subject:Patient.birthdate', 'general-practitioner.name'];

/** A cursor of the right shape with values of any type: a page link a client tampered with. */
function cursor(rng: Rng): string {
  const values = Array.from({ length: rng.int(0, 3) }, () => rng.pick<unknown>(['x', 'not-a-date', '2024-03-01T00:00:00.000Z', 'infinity', 12.5, -1, null, true, [], {}, '\u0000']));
  const rk = rng.pick([1, 0, -1, 2 ** 53, 1.5]);
  return Buffer.from(`[${JSON.stringify(values)},${rk},${rng.int(0, 1)}]`).toString('base64url');
}

/** `_sort` over the type's own parameters, any type, either direction, one to three keys. */
function sort(rng: Rng, type: string): string {
  const codes = [...getParams(type).map((p) => p.code), '_id', '_lastUpdated'];
  return Array.from({ length: rng.int(1, 3) }, () => `${rng.chance(0.4) ? '-' : ''}${rng.pick(codes)}`).join(',');
}

function value(rng: Rng): string {
  const v = rng.chance(0.5) ? hostileString(rng) : rng.pick(['p-wang', 'Patient/p-wang', '718-7', 'http://loinc.org|718-7', '2024-03-01', '13.2', '13.2|http://unitsofmeasure.org|g/dL', 'true', 'false', '王', 'ＷＡＮＧ', '0001-01-01', '9999-12-31', '0001-01-01T00:00:00+14:00']);
  const prefixed = rng.chance(0.3) ? `${rng.pick(PREFIXES)}${v}` : v;
  return rng.chance(0.1) ? `${prefixed},${value(rng)}` : prefixed;
}

function pair(rng: Rng, type: string): [string, string] {
  const roll = rng.next();
  if (roll < 0.25) {
    const [name, make] = rng.pick(CONTROL);
    return [name, make(rng)];
  }
  if (roll < 0.35) return [rng.pick(CHAINS), value(rng)];
  if (roll < 0.45) return ['_sort', sort(rng, type)];
  const params = getParams(type);
  const name = roll < 0.85 && params.length > 0 ? rng.pick(params).code : rng.pick(['nonsense', '', ':', '_', '__proto__', 'constructor', hostileString(rng)]);
  return [rng.chance(0.35) ? `${name}:${rng.pick(MODIFIERS)}` : name, value(rng)];
}

/** A query string, usually well encoded; sometimes raw bytes a client should never send. */
function queryString(rng: Rng, pairs: [string, string][]): string {
  const encoded = pairs.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`);
  if (rng.chance(0.05)) encoded.push(rng.pick(['%', '%zz', '%00', '%FF%FE', '=', '&&', 'a=%E4%B8', `x=${'%25'.repeat(2000)}`]));
  return encoded.join('&');
}

/** Every byte of the UTF-8 form (a lone surrogate becomes U+FFFD, as any client would send it). */
function percentEncode(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
}

describe('fuzz: search parameters', () => {
  let t: TestServer;
  /** What the app's error handler saw: the cause of each 500. */
  const errors: string[] = [];
  beforeAll(async () => {
    t = await startTestServer('pglite', { patientIndex: true, onError: (err) => errors.push((err as Error).message) });
    const api = await agentFor(t.app, OFFICE);
    await api.post('/fhir').set('Content-Type', FHIR).send(transaction([...patients, ...observations])).expect(200);
    for (const bundle of generateConsortium({ seed: 7, patients: 4, resources: 120 })) await api.post('/fhir').set('Content-Type', FHIR).send(bundle).expect(200);
  });
  afterAll(() => t.close());

  it(`answers ${CASES} random searches with a Bundle or an OperationOutcome, never a 5xx or a hang`, async () => {
    const rng = fuzzRng('search');
    const tally = new FuzzTally('search');
    const types = resourceTypes();
    // A facility's token: every search also goes through the store's access filter.
    const api = await agentFor(t.app, 'city-hospital');
    for (let i = 0; i < CASES; i++) {
      const n = tally.next();
      const type = rng.chance(0.8) ? rng.pick(COMMON) : rng.chance(0.9) ? rng.pick(types) : rng.pick(['Nonsense', 'patient', '_history', '$everything', '%E7%97%85']);
      const pairs = Array.from({ length: rng.int(1, 4) }, () => pair(rng, type));
      const strict = rng.chance(0.3);
      const qs = queryString(rng, pairs);
      // Node refuses request lines over 16 KB itself (431, before the app): huge values go in a POST body.
      const viaPost = qs.length > 8000 || rng.chance(0.15);
      // Now and then the other paged reads, whose _since, _count and _cursor are parsed apart from search.
      const path = viaPost ? `/fhir/${type}/_search` : rng.pick([...Array(9).fill(`/fhir/${type}`), `/fhir/${type}/_history`, '/fhir/_history', '/fhir/Patient/p-wang/$everything']);
      const input = `${viaPost ? 'POST' : 'GET'} ${path}?${qs}${strict ? ' [strict]' : ''}`;
      const started = performance.now();
      try {
        const req = viaPost ? api.post(path).type('form').send(qs) : api.get(`${path}?${qs}`);
        if (strict) req.set('Prefer', 'handling=strict');
        const res = await req.timeout(REQUEST_TIMEOUT_MS).ok(() => true);
        tally.took(performance.now() - started, input);
        const problem = fhirAnswerProblem(res, 'Bundle');
        if (problem) tally.fail(n, input, res.status >= 500 ? `${problem} (${errors.at(-1)})` : problem, res.status >= 500);
      } catch (err) {
        tally.fail(n, input, `no answer: ${(err as Error).message}`, true);
      }
    }
    expect(tally.report()).toEqual([]);
    expect(tally.cases).toBe(CASES);
  });
});
