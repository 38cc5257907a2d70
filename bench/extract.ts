/**
 * Index extraction cost: compiled closures vs medplum's FHIRPath fallback.
 * Run: npx tsx bench/extract.ts   (median of 5 runs of 5,000 resources each)
 */
import { extractIndexRows, fallbackParams } from '../store/extract';

type R = { resourceType: string; [k: string]: unknown };

const observation: R = {
  resourceType: 'Observation',
  id: 'obs-bench',
  meta: {
    tag: [{ system: 'urn:consortium:source', code: 'hospital-a' }],
    security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }],
  },
  identifier: [{ system: 'urn:oid:2.16.156.10011.1.11.1.2', value: 'LIS-2024-000123' }],
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] }],
  code: {
    coding: [
      { system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood' },
      { system: 'urn:local:lis', code: 'HGB', display: '血红蛋白' },
    ],
    text: '血红蛋白',
  },
  subject: { reference: 'Patient/p-bench' },
  encounter: { reference: 'Encounter/e-bench' },
  effectiveDateTime: '2024-03-05T10:00:00+08:00',
  issued: '2024-03-05T11:30:00+08:00',
  performer: [{ reference: 'Practitioner/pr-bench' }, { reference: 'Organization/org-bench' }],
  valueQuantity: { value: 135, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
  interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'N' }] }],
  referenceRange: [{ low: { value: 120, unit: 'g/L' }, high: { value: 160, unit: 'g/L' } }],
};

const patient: R = {
  resourceType: 'Patient',
  id: 'p-bench',
  meta: { tag: [{ system: 'urn:consortium:source', code: 'hospital-a' }] },
  identifier: [
    { system: 'urn:oid:2.16.156.10011.1.3', value: '110101199003074514', type: { text: '居民身份证' } },
    { system: 'urn:oid:2.16.156.10011.1.11.1', value: 'MRN001' },
  ],
  active: true,
  name: [
    { use: 'official', text: '王小明', family: '王', given: ['小明'] },
    { use: 'usual', family: 'Wang', given: ['Xiaoming'] },
  ],
  telecom: [
    { system: 'phone', value: '13800138000', use: 'mobile' },
    { system: 'email', value: 'wxm@example.org' },
  ],
  gender: 'male',
  birthDate: '1990-03-07',
  address: [{ use: 'home', line: ['文三路 100 号'], city: '杭州市', district: '西湖区', state: '浙江省', postalCode: '310012', country: 'CN' }],
  managingOrganization: { reference: 'Organization/org-bench' },
};

const N = 5000;
const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const SURNAMES = ['王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周', '吴'];
const GIVEN = ['小明', '华', '伟', '芳', '娜', '秀英', '敏', '静', '丽', '强', '磊', '军'];

/**
 * Distinct copies of a resource (ids, identifiers, values, times and names vary), so that
 * per-string caches see realistic misses rather than one resource over and over.
 */
function variants(resource: R, count: number): R[] {
  const out: R[] = [];
  for (let i = 0; i < count; i++) {
    const r = structuredClone(resource) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    r.id = `${r.id}-${i}`;
    if (r.identifier) r.identifier[0].value = `${r.identifier[0].value}-${i}`;
    if (r.valueQuantity) r.valueQuantity.value = 100 + (i % 700) / 10;
    if (r.effectiveDateTime) r.effectiveDateTime = `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00+08:00`;
    if (r.subject) r.subject.reference = `Patient/p-${i}`;
    if (r.name) {
      const family = SURNAMES[i % SURNAMES.length];
      const given = GIVEN[(i * 7) % GIVEN.length] + (i % 97 === 0 ? '' : String.fromCharCode(0x4e00 + (i % 5000)));
      r.name[0] = { use: 'official', text: family + given, family, given: [given] };
      r.name[1] = { use: 'usual', family: `Fam${i}`, given: [`Given${i}`] };
    }
    if (r.birthDate) r.birthDate = `${1940 + (i % 80)}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`;
    if (r.telecom) r.telecom[0].value = `138${String(i).padStart(8, '0')}`;
    out.push(r as R);
  }
  return out;
}

/** Median µs per resource over RUNS runs of N extractions; every run sees resources not seen before. */
function measure(resources: R[], forceFallback: boolean): number {
  const opts = { forceFallback };
  for (let i = 0; i < 500; i++) extractIndexRows(resources[resources.length - 1 - i], opts); // warm up
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = r * N; i < (r + 1) * N; i++) extractIndexRows(resources[i], opts);
    runs.push(Number(process.hrtime.bigint() - t0) / 1000 / N);
  }
  return median(runs);
}

extractIndexRows(observation); // load definitions and compile outside the timing
for (const resource of [observation, patient]) {
  const rows = extractIndexRows(resource);
  const count = rows.token.length + rows.string.length + rows.date.length + rows.reference.length + rows.number.length;
  const copies = variants(resource, RUNS * N + 500);
  const compiled = measure(copies, false);
  const fallback = measure(copies, true);
  const fb = fallbackParams(resource.resourceType);
  console.log(
    `${resource.resourceType.padEnd(12)} rows=${String(count).padStart(3)}  compiled ${compiled.toFixed(2).padStart(7)} µs  ` +
      `fallback ${fallback.toFixed(2).padStart(7)} µs  ratio ${(fallback / compiled).toFixed(1)}x` +
      (fb.length ? `  (still via fallback: ${fb.join(', ')})` : ''),
  );
}
