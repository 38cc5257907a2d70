import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConceptMap, Condition, DiagnosticReport, DocumentReference, ServiceRequest, Task, Encounter, ImagingStudy, Medication, MedicationRequest, Observation, Patient, Resource } from '@medplum/fhirtypes';
import * as county from '../../mappers/county-json';
import { facilityNames, Terminology, type MapContext, type SourceConfig } from '../../mappers/context';
import { resourceId } from '../../mappers/ids';
import { MappingError, type MapResult } from '../../mappers/types';
import { validateMappedBundle } from '../../profiles/conformance';
import { directionOf, workflowKindOf } from '../../profiles/referral';
import { thrown } from '../support/thrown';

const ROOT = resolve(__dirname, '../..');
const FIXTURES = join(ROOT, 'fixtures/messages/county-hospital');
const BROKEN = join(ROOT, 'fixtures/messages/broken/county-hospital');
const FACILITY = 'county-hospital';

/** The context the source registry builds: the source's config and its own ConceptMaps. */
function countyContext(): MapContext {
  const sources = JSON.parse(readFileSync(join(ROOT, 'fixtures/demo-sources.json'), 'utf8')) as SourceConfig[];
  const dir = join(ROOT, 'mappers/terminology');
  const maps = readdirSync(dir)
    .filter((f) => f.startsWith(`${FACILITY}-`))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ConceptMap);
  return { source: sources.find((s) => s.id === FACILITY)!, terminology: new Terminology(maps), facilities: facilityNames(sources) };
}
const ctx = countyContext();

const id = (kind: string, local: string): string => resourceId(FACILITY, kind, local);
const ref = (type: string, kind: string, local: string): { reference: string } => ({ reference: `${type}/${id(kind, local)}` });
const meta = (record: string): { source: string } => ({ source: `urn:consortium:source:county-hospital#${record}` });
const ORG = { reference: 'Organization/county-hospital' };

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
const ATC = 'http://www.whocc.no/atc';
const LIS = 'http://example.org/fhir/CodeSystem/county-hospital-lis';
const RIS = 'http://example.org/fhir/CodeSystem/county-hospital-ris';
const DX = 'http://example.org/fhir/CodeSystem/county-hospital-dx';
const DRUG = 'http://example.org/fhir/CodeSystem/county-hospital-drug';
const MRN_SYSTEM = 'urn:oid:2.16.156.10011.1.11.2';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const MRN_TYPE = { coding: [{ system: V2_0203, code: 'MR', display: 'Medical record number' }], text: '病案号' };
const ID_TYPE_CODING = { system: V2_0203, code: 'NI', display: 'National unique individual identifier' };
const LAB_CATEGORY = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }];
const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
const ucum = (value: number, code: string, unit = code) => ({ value, unit, system: UCUM, code });

const read = (file: string): string => readFileSync(join(FIXTURES, file), 'utf8');
const mapBody = (body: string): MapResult[] => county.split(body).map((r) => county.map(r.raw, ctx));
const mapFile = (file: string): MapResult[] => mapBody(read(file));
const mapOne = (record: object): MapResult => county.map(JSON.stringify(record), ctx);
const resources = (r: MapResult): Resource[] => r.bundle.entry!.map((e) => e.resource!);
const all = <T extends Resource>(r: MapResult, type: T['resourceType']): T[] => resources(r).filter((x) => x.resourceType === type) as T[];
const one = <T extends Resource>(r: MapResult, type: T['resourceType']): T => {
  const found = all<T>(r, type);
  expect(found).toHaveLength(1);
  return found[0];
};
const byId = <T extends Resource>(r: MapResult, resourceIdValue: string): T => resources(r).find((x) => x.id === resourceIdValue) as T;
/** A create-only copy of the patient: the MRN alone. */
const patientCopy = (mrn: string, record: string): Patient => ({
  resourceType: 'Patient',
  id: id('patient', mrn),
  meta: meta(record),
  identifier: [{ use: 'usual', type: MRN_TYPE, system: MRN_SYSTEM, value: mrn }],
  managingOrganization: ORG,
});
const decode = (data: string): string => Buffer.from(data, 'base64').toString('utf8');

const FIXTURE_FILES = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();

describe('county JSON: split', () => {
  it('keeps each record of a body as its own JSON text, with its type and number', () => {
    const summary = Object.fromEntries(FIXTURE_FILES.map((f) => [f, county.split(read(f)).map((r) => [r.kind, r.localId])]));
    expect(summary).toEqual({
      'br-patients.json': [['br', 'Z0000201'], ['br', 'Z0000202'], ['br', 'Z0000203'], ['br', 'Z0000205']],
      'cf-prescription.json': [['cf', 'CF20251105001']],
      'jc-ct-chest.json': [['jc', 'JC20251106003']],
      'jc-ecg.json': [['jc', 'JC20251107011']],
      'jc-us-abdomen.json': [['jc', 'JC20251108021']],
      'jy-lab-diabetes.json': [['jy', 'JY20251105018']],
      'jz-jy-chen-jianguo-admission.json': [['jz', 'ZY20251106001'], ['jy', 'JY20251106007']],
      'jz-visit-hypertension.json': [['jz', 'MZ20251105001']],
      'zzd-zhao-wei-down.json': [['zzd', 'ZZ20251109001']],
    });
    const body = JSON.parse(read('br-patients.json')) as object[];
    expect(county.split(read('br-patients.json')).map((r) => JSON.parse(r.raw))).toEqual(body);
  });

  it('reads a body that starts with a byte order mark', () => {
    expect(county.split(`\uFEFF${read('jc-ecg.json')}`).map((r) => r.localId)).toEqual(['JC20251107011']);
  });

  it('gives a record of unknown type the kind "unknown" and leaves refusing it to map', () => {
    expect(county.split('[{"lx": 7, "brid": "Z1"}, {"lx": "toString"}]')).toEqual([
      { raw: '{"lx":7,"brid":"Z1"}', kind: 'unknown' },
      { raw: '{"lx":"toString"}', kind: 'toString' },
    ]);
  });

  it('refuses an empty array: a body with no records', () => {
    const e = thrown(() => county.split('[]'));
    expect([e.where, e.code]).toEqual(['$', 'required']);
  });

  it('names the line and column of a syntax error without quoting the data', () => {
    const e = thrown(() => county.split('{\n  "lx": "br",\n  "sfzh": "339901195803120317",\n  "brxm": 王\n}'));
    expect([e.where, e.code, e.message]).toEqual(['line 4', 'structure', 'not valid JSON: expected a value at line 4, column 11']);
    expect(thrown(() => county.split('{"lx": "br", "brid": "Z1"')).message).toBe('not valid JSON: unexpected end of input at line 1, column 26');
    expect(thrown(() => county.split('{"lx": "br"} {}')).message).toBe('not valid JSON: unexpected text after the JSON value at line 1, column 14');
    expect(thrown(() => county.split('{"brxm": "王\n伟"}')).message).toBe('not valid JSON: control character in a string (a line break must be written \\n) at line 1, column 12');
  });
});

describe('county JSON: every demo record', () => {
  const results = FIXTURE_FILES.flatMap((f) => county.split(read(f)).map((r) => ({ file: f, record: r, result: county.map(r.raw, ctx) })));

  it.each(results.map((x) => [`${x.file} ${x.record.localId}`, x] as const))('%s is a transaction of PUTs to deterministic ids, all from its record', (_, { record, result }) => {
    expect(result.bundle.type).toBe('transaction');
    const ids = new Set<string>();
    for (const e of result.bundle.entry!) {
      const r = e.resource!;
      expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(e.fullUrl).toBe(`urn:uuid:${r.id}`);
      expect(e.request).toEqual({ method: 'PUT', url: `${r.resourceType}/${r.id}` });
      expect(r.meta).toEqual(meta(record.localId!));
      expect(ids.has(r.id!)).toBe(false);
      ids.add(r.id!);
    }
    // Every record names its patient by the MRN-derived id, and that Patient is in the bundle.
    const mrn = (JSON.parse(record.raw) as { brid: string }).brid;
    expect(byId<Patient>(result, id('patient', mrn)).resourceType).toBe('Patient');
    const subjects = resources(result).flatMap((r) => ('subject' in r && r.subject ? [(r.subject as { reference: string }).reference] : []));
    expect(new Set(subjects)).toEqual(new Set(subjects.length > 0 ? [`Patient/${id('patient', mrn)}`] : []));
    // Only the registration (br) writes its Patient; every other record carries a create-only copy
    // (and a referral its Task, whose status is the receiver's to move).
    const task = record.kind === 'zzd' ? [`urn:uuid:${id('referral-task', record.localId!)}`] : [];
    expect(result.createOnly).toEqual(record.kind === 'br' ? [] : [`urn:uuid:${id('patient', mrn)}`, ...task]);
    expect(() => validateMappedBundle(result.bundle, result.createOnly)).not.toThrow();
  });

  it.each(results.map((x) => [`${x.file} ${x.record.localId}`, x] as const))('%s maps to the same bundle twice, sharing no objects', (_, { record, result }) => {
    const again = county.map(record.raw, ctx);
    expect(JSON.stringify(again)).toBe(JSON.stringify(result));
    again.bundle.entry![0].resource!.meta!.versionId = 'edited';
    expect(result.bundle.entry![0].resource!.meta!.versionId).toBeUndefined();
  });
});

describe('county JSON: br, patient registrations', () => {
  const [wang, li, chen, zhao] = mapFile('br-patients.json');

  it('maps 王晓明 (the county spelling of 王小明) with ID number, phone and address', () => {
    expect(wang.bundle.entry).toHaveLength(1);
    expect(one<Patient>(wang, 'Patient')).toEqual({
      resourceType: 'Patient',
      id: id('patient', 'Z0000201'),
      meta: meta('Z0000201'),
      identifier: [
        { use: 'usual', type: MRN_TYPE, system: MRN_SYSTEM, value: 'Z0000201' },
        { use: 'official', type: { coding: [ID_TYPE_CODING], text: '居民身份证' }, system: 'urn:oid:2.16.156.10011.1.3', value: '339901195803120317' },
      ],
      name: [{ use: 'official', text: '王晓明' }],
      telecom: [{ system: 'phone', value: '17000000101', use: 'mobile' }],
      gender: 'male',
      birthDate: '1958-03-12',
      address: [{ use: 'home', text: '浙江省云溪市青湖区湖滨街道湖滨路18号' }],
      managingOrganization: ORG,
    } satisfies Patient);
    expect([wang.createOnly, wang.unmapped, wang.warnings]).toEqual([[], [], []]);
  });

  it('keeps 李秀英 insurance card under the canonical system', () => {
    const p = one<Patient>(li, 'Patient');
    expect(p.identifier![2]).toEqual({ use: 'official', type: { coding: [{ system: V2_0203, code: 'MC' }], text: '医保卡' }, system: 'urn:oid:2.16.156.10011.1.15', value: 'YB33992100012' });
    expect(p.gender).toBe('female');
    expect(p.address).toBeUndefined();
  });

  it('keeps 陈建国 mistyped ID number but flags it unverified, with a warning that does not quote it', () => {
    const p = one<Patient>(chen, 'Patient');
    expect(p.identifier![1]).toEqual({
      use: 'temp',
      type: {
        coding: [ID_TYPE_CODING, { system: 'http://consortium.example/fhir/CodeSystem/identifier-check', code: 'failed', display: 'ID number check failed: check character does not match' }],
        text: '居民身份证',
      },
      system: 'urn:oid:2.16.156.10011.1.3',
      value: '339902197111090158',
    });
    expect(chen.warnings).toEqual(['$.sfzh: resident ID number fails its check (check character does not match); stored as unverified']);
  });

  it('reads a sex code sent as a number and keeps the health card', () => {
    const p = one<Patient>(zhao, 'Patient');
    expect(p.gender).toBe('male');
    expect(p.identifier![2]).toEqual({ use: 'official', type: { coding: [{ system: V2_0203, code: 'HC' }], text: '居民健康卡' }, system: 'urn:oid:2.16.156.10011.1.19', value: 'JK3399210000055' });
  });

  it('says when sex or birth date disagree with a valid ID number, keeping what was registered', () => {
    const r = mapOne({ lx: 'br', brid: 'Z9', brxm: '王小明', xb: '2', csrq: '1958-12-03', sfzh: '339901195803120317' });
    expect(one<Patient>(r, 'Patient')).toMatchObject({ gender: 'female', birthDate: '1958-12-03' });
    expect(r.warnings).toEqual(['$.csrq: birth date differs from the one the resident ID number encodes', '$.xb: sex differs from the one the resident ID number encodes']);
  });

  it('maps GB/T 2261.1 codes 0 and 9 to unknown', () => {
    expect(one<Patient>(mapOne({ lx: 'br', brid: 'Z9', brxm: '某', xb: '0' }), 'Patient').gender).toBe('unknown');
    expect(one<Patient>(mapOne({ lx: 'br', brid: 'Z9', brxm: '某', xb: 9 }), 'Patient').gender).toBe('unknown');
  });

  it('calls a landline a home phone', () => {
    expect(one<Patient>(mapOne({ lx: 'br', brid: 'Z9', brxm: '某', xb: '1', lxdh: '0571-87000000' }), 'Patient').telecom).toEqual([{ system: 'phone', value: '0571-87000000', use: 'home' }]);
  });
});

describe('county JSON: jz, visits and diagnoses', () => {
  it('maps 王晓明 outpatient visit: ICD-10 beside the local code, the unmapped one counted', () => {
    const [r] = mapFile('jz-visit-hypertension.json');
    const main = id('condition', 'MZ20251105001|ZD001');
    const secondary = id('condition', 'MZ20251105001|ZD099');
    expect(resources(r).map((x) => x.id)).toEqual([id('patient', 'Z0000201'), id('encounter', 'MZ20251105001'), main, secondary]);
    expect(byId(r, id('patient', 'Z0000201'))).toEqual(patientCopy('Z0000201', 'MZ20251105001'));
    expect(one<Encounter>(r, 'Encounter')).toEqual({
      resourceType: 'Encounter',
      id: id('encounter', 'MZ20251105001'),
      meta: meta('MZ20251105001'),
      identifier: [{ use: 'usual', type: { coding: [{ system: V2_0203, code: 'VN' }], text: '就诊流水号' }, system: 'urn:consortium:source:county-hospital:visit-number', value: 'MZ20251105001' }],
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
      serviceType: { text: '心内科门诊' },
      subject: ref('Patient', 'patient', 'Z0000201'),
      participant: [{ type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND', display: 'attender' }] }], individual: { display: '周明' } }],
      period: { start: '2025-11-05T09:12:30+08:00' },
      diagnosis: [
        { condition: { reference: `Condition/${main}` }, rank: 1 },
        { condition: { reference: `Condition/${secondary}` }, rank: 2 },
      ],
      serviceProvider: ORG,
    } satisfies Encounter);
    const conditions = all<Condition>(r, 'Condition');
    expect(conditions[0]).toEqual({
      resourceType: 'Condition',
      id: main,
      meta: meta('MZ20251105001'),
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }] }],
      code: {
        coding: [
          { system: ICD10, code: 'I10', display: 'Essential (primary) hypertension' },
          { system: DX, code: 'ZD001', display: '原发性高血压' },
        ],
        text: '原发性高血压',
      },
      subject: ref('Patient', 'patient', 'Z0000201'),
      encounter: ref('Encounter', 'encounter', 'MZ20251105001'),
      recordedDate: '2025-11-05T09:12:30+08:00',
    } satisfies Condition);
    expect(conditions[1].code).toEqual({ coding: [{ system: DX, code: 'ZD099', display: '高脂血症' }], text: '高脂血症' });
    expect(r.unmapped).toEqual([{ system: DX, code: 'ZD099', display: '高脂血症', kind: 'diagnosis' }]);
  });

  const [admission, cbc] = mapFile('jz-jy-chen-jianguo-admission.json');

  it('maps 陈建国 admission: inpatient, finished at discharge, ranks by diagnosis type', () => {
    const enc = one<Encounter>(admission, 'Encounter');
    expect([enc.class, enc.status, enc.period]).toEqual([
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP', display: 'inpatient encounter' },
      'finished',
      { start: '2025-11-06T10:05:00+08:00', end: '2025-11-13T09:30:00+08:00' },
    ]);
    expect(enc.diagnosis!.map((d) => [d.condition.reference, d.rank])).toEqual([
      [`Condition/${id('condition', 'ZY20251106001|ZD004')}`, 1],
      [`Condition/${id('condition', 'ZY20251106001|I10')}`, 2],
      [`Condition/${id('condition', 'ZY20251106001|ZD031')}`, 3],
    ]);
  });

  it('takes ICD-10 from the ConceptMap, from a local code that is ICD-10, and from the icd10 field', () => {
    expect(all<Condition>(admission, 'Condition').map((c) => c.code!.coding)).toEqual([
      [{ system: ICD10, code: 'J18.9', display: 'Pneumonia, unspecified' }, { system: DX, code: 'ZD004', display: '社区获得性肺炎' }],
      [{ system: ICD10, code: 'I10' }, { system: DX, code: 'I10', display: '高血压' }],
      [{ system: ICD10, code: 'E87.6' }, { system: DX, code: 'ZD031', display: '低钾血症' }],
    ]);
    expect(admission.unmapped).toEqual([]);
  });

  it('prefers the sender’s icd10 for the record over the ConceptMap of its local code', () => {
    const r = mapOne({ lx: 'jz', jzlsh: 'MZ9', brid: 'Z9', jzlx: '1', jzsj: '2025-11-05 09:00:00', zd: [{ zddm: 'ZD002', zdmc: '2型糖尿病伴肾病', icd10: 'E11.2' }] });
    expect(one<Condition>(r, 'Condition').code!.coding![0]).toEqual({ system: ICD10, code: 'E11.2' });
    expect(one<Encounter>(r, 'Encounter').diagnosis).toEqual([{ condition: { reference: `Condition/${id('condition', 'MZ9|ZD002')}` } }]);
  });

  it('keeps an inpatient or emergency visit without an end in progress', () => {
    const visit = (jzlx: string) => one<Encounter>(mapOne({ lx: 'jz', jzlsh: 'V9', brid: 'Z9', jzlx, jzsj: '2025-11-05 09:00:00' }), 'Encounter');
    expect([visit('2').status, visit('3').status, visit('3').class.code, visit('1').status]).toEqual(['in-progress', 'in-progress', 'EMER', 'finished']);
  });

  it('refuses a diagnosis listed twice in one visit', () => {
    const e = thrown(() => mapOne({ lx: 'jz', jzlsh: 'V9', brid: 'Z9', jzlx: '1', jzsj: '2025-11-05 09:00:00', zd: [{ zddm: 'ZD001', zdmc: 'a' }, { zddm: 'ZD001', zdmc: 'b' }] }));
    expect([e.where, e.code]).toEqual(['$.zd[1].zddm', 'value']);
  });

  it('links the lab report of the same body to the visit by its visit number', () => {
    expect(one<DiagnosticReport>(cbc, 'DiagnosticReport').encounter).toEqual({ reference: `Encounter/${one<Encounter>(admission, 'Encounter').id}` });
  });

  it('maps a blood count: both spellings of 10^9/L, 10^12/L and g/L to UCUM, arrows and letters to flags', () => {
    expect(
      all<Observation>(cbc, 'Observation').map((o) => [o.code.coding![0].code, o.valueQuantity, o.interpretation?.[0].coding![0].code, o.referenceRange![0].low?.code]),
    ).toEqual([
      ['6690-2', ucum(12.8, '10*9/L', '10^9/L'), 'H', '10*9/L'],
      ['789-8', ucum(4.52, '10*12/L', '10^12/L'), undefined, '10*12/L'],
      ['718-7', ucum(138, 'g/L'), undefined, 'g/L'],
      ['777-3', ucum(215, '10*9/L', '×10⁹/L'), 'N', '10*9/L'],
      ['2823-3', ucum(3.2, 'mmol/L'), 'L', 'mmol/L'],
      ['2951-2', ucum(139, 'mmol/L'), undefined, 'mmol/L'],
    ]);
    expect(cbc.warnings).toEqual([]);
  });
});

describe('county JSON: jy, laboratory reports', () => {
  const [r] = mapFile('jy-lab-diabetes.json');
  const obs = all<Observation>(r, 'Observation');
  const common: Omit<Observation, 'code'> = {
    resourceType: 'Observation',
    meta: meta('JY20251105018'),
    status: 'final',
    category: LAB_CATEGORY,
    subject: ref('Patient', 'patient', 'Z0000202'),
    encounter: ref('Encounter', 'encounter', 'MZ20251105002'),
    effectiveDateTime: '2025-11-05T08:05:00+08:00',
    issued: '2025-11-05T11:40:00+08:00',
    performer: [ORG],
  };

  it('maps a numeric item with its range, flag, LOINC and local code', () => {
    expect(obs[0]).toEqual({
      ...common,
      id: id('observation', 'JY20251105018|0201'),
      code: {
        coding: [
          { system: LOINC, code: '14771-0', display: 'Fasting glucose [Moles/volume] in Serum or Plasma' },
          { system: LIS, code: '0201', display: '空腹血糖' },
        ],
        text: '空腹血糖',
      },
      valueQuantity: ucum(8.6, 'mmol/L'),
      interpretation: [{ coding: [{ system: INTERPRETATION, code: 'H', display: 'High' }] }],
      referenceRange: [{ low: ucum(3.9, 'mmol/L'), high: ucum(6.1, 'mmol/L'), text: '3.9-6.1' }],
    } satisfies Observation);
  });

  it('reads a JSON number, an upper bound as the range, μmol/L as UCUM umol/L, and a comparator in front of a value', () => {
    expect(obs[1].valueQuantity).toEqual(ucum(7.4, '%'));
    expect(obs[2].referenceRange).toEqual([{ high: ucum(5.2, 'mmol/L'), text: '<5.2' }]);
    expect(obs[2].interpretation).toEqual([{ coding: [{ system: INTERPRETATION, code: 'N', display: 'Normal' }] }]);
    expect([obs[3].code.coding![0].code, obs[3].valueQuantity, obs[3].interpretation]).toEqual(['14682-9', ucum(68, 'umol/L', 'μmol/L'), undefined]);
    expect(obs[4].valueQuantity).toEqual({ ...ucum(5, 'U/L'), comparator: '<' });
  });

  it('keeps a text result as text, its range as text, and counts its local code as unmapped', () => {
    expect(obs[5]).toEqual({
      ...common,
      id: id('observation', 'JY20251105018|0299'),
      code: { coding: [{ system: LIS, code: '0299', display: '尿微量白蛋白' }], text: '尿微量白蛋白' },
      valueString: '阴性',
      referenceRange: [{ text: '阴性' }],
    } satisfies Observation);
    expect(r.unmapped).toEqual([{ system: LIS, code: '0299', display: '尿微量白蛋白', kind: 'lab' }]);
  });

  it('reports every item, in order, under a LAB report', () => {
    expect(one<DiagnosticReport>(r, 'DiagnosticReport')).toEqual({
      resourceType: 'DiagnosticReport',
      id: id('report', 'JY20251105018'),
      meta: meta('JY20251105018'),
      identifier: [{ use: 'official', type: { coding: [{ system: V2_0203, code: 'FILL' }], text: '报告单号' }, system: 'urn:consortium:source:county-hospital:report', value: 'JY20251105018' }],
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB', display: 'Laboratory' }] }],
      code: { text: '检验报告（血清）' },
      subject: ref('Patient', 'patient', 'Z0000202'),
      encounter: ref('Encounter', 'encounter', 'MZ20251105002'),
      effectiveDateTime: '2025-11-05T08:05:00+08:00',
      issued: '2025-11-05T11:40:00+08:00',
      performer: [ORG],
      result: ['0201', '0202', '0205', '0203', '0204', '0299'].map((code) => ref('Observation', 'observation', `JY20251105018|${code}`)),
    } satisfies DiagnosticReport);
    expect(byId(r, id('patient', 'Z0000202'))).toEqual(patientCopy('Z0000202', 'JY20251105018'));
  });

  const report = (items: object[], extra: object = {}) => mapOne({ lx: 'jy', bgdh: 'JY9', brid: 'Z9', bgsj: '2025-11-05 11:40:00', xm: items, ...extra });

  it('keeps an unknown unit and an unknown flag out of the codes, saying so', () => {
    const x = report([{ xmdm: '0201', xmmc: '空腹血糖', jg: '8.6', dw: 'mg/碗', bz: '*' }]);
    const o = one<Observation>(x, 'Observation');
    expect([o.valueQuantity, o.interpretation]).toEqual([{ value: 8.6, unit: 'mg/碗' }, undefined]);
    expect(x.warnings).toEqual(["$.xm[0].dw: unit 'mg/碗' has no UCUM code; kept as text", "$.xm[0].bz: flag '*' is not an abnormal flag this gateway knows; left out"]);
  });

  it('reads full-width digits and a range written with a tilde; a report without sample time is effective when released', () => {
    const x = report([{ xmdm: '0103', xmmc: '血红蛋白', jg: '１２５', dw: 'g/L', ckfw: '130～175', bz: '↓' }], { jzlsh: undefined });
    const o = one<Observation>(x, 'Observation');
    expect([o.valueQuantity, o.referenceRange, o.interpretation![0].coding![0].code, o.effectiveDateTime, o.encounter]).toEqual([
      ucum(125, 'g/L'),
      [{ low: ucum(130, 'g/L'), high: ucum(175, 'g/L'), text: '130～175' }],
      'L',
      '2025-11-05T11:40:00+08:00',
      undefined,
    ]);
  });

  it('refuses an item listed twice in one report', () => {
    const e = thrown(() => report([{ xmdm: '0201', xmmc: 'a', jg: 1 }, { xmdm: '0201', xmmc: 'b', jg: 2 }]));
    expect([e.where, e.code]).toEqual(['$.xm[1].xmdm', 'value']);
  });
});

describe('county JSON: jc, exam reports', () => {
  it('maps 陈建国 chest CT: conclusion, the report as text, the study', () => {
    const [r] = mapFile('jc-ct-chest.json');
    const study = id('study', '1.2.156.112605.14038.20251106142000.3');
    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect({ ...report, presentedForm: undefined }).toEqual({
      resourceType: 'DiagnosticReport',
      id: id('report', 'JC20251106003'),
      meta: meta('JC20251106003'),
      identifier: [{ use: 'official', type: { coding: [{ system: V2_0203, code: 'FILL' }], text: '报告单号' }, system: 'urn:consortium:source:county-hospital:report', value: 'JC20251106003' }],
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD', display: 'Radiology' }] }],
      code: { coding: [{ system: LOINC, code: '29252-4', display: 'CT Chest WO contrast' }, { system: RIS, code: 'CT001', display: '胸部CT平扫' }], text: '胸部CT平扫' },
      subject: ref('Patient', 'patient', 'Z0000203'),
      encounter: ref('Encounter', 'encounter', 'ZY20251106001'),
      effectiveDateTime: '2025-11-06T14:20:00+08:00',
      issued: '2025-11-06T16:05:00+08:00',
      performer: [ORG],
      imagingStudy: [{ reference: `ImagingStudy/${study}` }],
      conclusion: '右肺下叶炎症，建议抗感染治疗后复查。',
      presentedForm: undefined,
    });
    expect(report.presentedForm).toHaveLength(1);
    expect({ ...report.presentedForm![0], data: decode(report.presentedForm![0].data!) }).toEqual({
      contentType: 'text/plain; charset=utf-8',
      language: 'zh-CN',
      data: '【检查部位】\n胸部\n\n【检查所见】\n右肺下叶见斑片状高密度影，边界模糊，纵隔未见肿大淋巴结。\n\n【诊断意见】\n右肺下叶炎症，建议抗感染治疗后复查。',
      title: '胸部CT平扫',
    });
    expect(one<ImagingStudy>(r, 'ImagingStudy')).toEqual({
      resourceType: 'ImagingStudy',
      id: study,
      meta: meta('JC20251106003'),
      identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.156.112605.14038.20251106142000.3' }],
      status: 'available',
      modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }],
      subject: ref('Patient', 'patient', 'Z0000203'),
      encounter: ref('Encounter', 'encounter', 'ZY20251106001'),
      started: '2025-11-06T14:20:00+08:00',
      description: '胸部CT平扫',
    } satisfies ImagingStudy);
    expect(r.unmapped).toEqual([]);
  });

  it('maps 王晓明 ECG under section EC, with no study and no visit', () => {
    const [r] = mapFile('jc-ecg.json');
    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect([report.category, report.code.coding![0].code, report.conclusion, report.encounter, report.imagingStudy]).toEqual([
      [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'EC', display: 'Electrocardiac (e.g., EKG, EEC, Holter)' }] }],
      '11524-6',
      '正常心电图',
      undefined,
      undefined,
    ]);
    expect(all(r, 'ImagingStudy')).toEqual([]);
    expect(decode(report.presentedForm![0].data!)).toBe('【检查所见】\n窦性心律，心率 68 次/分。\n\n【诊断意见】\n正常心电图');
  });

  it('maps 赵伟 abdominal ultrasound: an unmapped exam code, the US modality, an impression alone', () => {
    const [r] = mapFile('jc-us-abdomen.json');
    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect(report.code).toEqual({ coding: [{ system: RIS, code: 'US003', display: '腹部彩超' }], text: '腹部彩超' });
    expect(r.unmapped).toEqual([{ system: RIS, code: 'US003', display: '腹部彩超', kind: 'exam' }]);
    expect(one<ImagingStudy>(r, 'ImagingStudy').modality).toEqual([{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'US' }]);
    expect(decode(report.presentedForm![0].data!)).toBe('【检查部位】\n腹部\n\n【诊断意见】\n脂肪肝（轻度），胆、胰、脾、双肾未见明显异常。');
  });

  it('names an uncoded exam by type and site, and reports an unknown exam type in section OTH', () => {
    const r = mapOne({ lx: 'jc', bgdh: 'JC9', brid: 'Z9', jclx: '胃镜', jcbw: '胃', bgsj: '2025-11-08 10:55:00', sj: '慢性浅表性胃炎' });
    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect([report.code, report.category![0].coding![0].code, report.conclusion, report.effectiveDateTime]).toEqual([{ text: '胃镜 胃' }, 'OTH', undefined, '2025-11-08T10:55:00+08:00']);
    expect(r.warnings).toEqual(["$.jclx: exam type '胃镜' is not one this gateway knows; reported in section OTH"]);
    expect(r.unmapped).toEqual([]);
  });
});

describe('county JSON: cf, prescriptions', () => {
  const [r] = mapFile('cf-prescription.json');
  const [amlodipine, atorvastatin, nitroglycerin] = all<MedicationRequest>(r, 'MedicationRequest');

  it('maps a line: the drug as a Medication, dose, frequency as timing, route, supply', () => {
    expect(amlodipine).toEqual({
      resourceType: 'MedicationRequest',
      id: id('medreq', 'CF20251105001|YP0001'),
      meta: meta('CF20251105001'),
      groupIdentifier: { system: 'urn:consortium:source:county-hospital:prescription', value: 'CF20251105001' },
      status: 'active',
      intent: 'order',
      medicationReference: { reference: `Medication/${id('medication', 'YP0001')}`, display: '苯磺酸氨氯地平片 5mg*28片' },
      subject: ref('Patient', 'patient', 'Z0000201'),
      encounter: ref('Encounter', 'encounter', 'MZ20251105001'),
      authoredOn: '2025-11-05T09:30:00+08:00',
      requester: { display: '周明' },
      dosageInstruction: [
        {
          text: '5mg qd 口服',
          timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' }, code: { text: 'qd' } },
          route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0162', code: 'PO', display: 'Oral' }], text: '口服' },
          doseAndRate: [{ doseQuantity: ucum(5, 'mg') }],
        },
      ],
      dispenseRequest: { quantity: ucum(1, '{box}', '盒'), expectedSupplyDuration: ucum(28, 'd') },
    } satisfies MedicationRequest);
    expect(byId<Medication>(r, id('medication', 'YP0001'))).toEqual({
      resourceType: 'Medication',
      id: id('medication', 'YP0001'),
      meta: meta('CF20251105001'),
      code: { coding: [{ system: ATC, code: 'C08CA01', display: 'amlodipine' }, { system: DRUG, code: 'YP0001', display: '苯磺酸氨氯地平片' }], text: '苯磺酸氨氯地平片 5mg*28片' },
    } satisfies Medication);
  });

  it('reads numbers sent as strings, and qn as at bedtime', () => {
    expect(atorvastatin.dosageInstruction![0].timing!.repeat).toEqual({ frequency: 1, period: 1, periodUnit: 'd', when: ['HS'] });
    expect(atorvastatin.dosageInstruction![0].doseAndRate).toEqual([{ doseQuantity: ucum(20, 'mg') }]);
    expect(atorvastatin.dispenseRequest).toEqual({ quantity: ucum(4, '{box}', '盒'), expectedSupplyDuration: ucum(28, 'd') });
  });

  it('maps prn as as-needed without a schedule; an unmapped drug is counted', () => {
    expect(nitroglycerin.dosageInstruction).toEqual([
      {
        text: '0.5mg prn 舌下含服',
        timing: { code: { text: 'prn' } },
        asNeededBoolean: true,
        route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0162', code: 'SL', display: 'Sublingual' }], text: '舌下含服' },
        doseAndRate: [{ doseQuantity: ucum(0.5, 'mg') }],
      },
    ]);
    expect(nitroglycerin.dispenseRequest).toEqual({ quantity: ucum(1, '{bottle}', '瓶') });
    expect(r.unmapped).toEqual([{ system: DRUG, code: 'YP0003', display: '硝酸甘油片', kind: 'drug' }]);
    expect(resources(r).map((x) => x.resourceType)).toEqual(['Patient', 'Medication', 'MedicationRequest', 'Medication', 'MedicationRequest', 'Medication', 'MedicationRequest']);
  });

  const prescription = (lines: object[]) => mapOne({ lx: 'cf', cfh: 'CF9', brid: 'Z9', kfsj: '2025-11-05 09:30:00', yp: lines });

  it('keeps an unknown frequency as text, saying so', () => {
    const x = prescription([{ ypdm: 'YP0001', ypmc: '苯磺酸氨氯地平片', jl: 5, jldw: 'mg', pc: '每日一次' }]);
    expect(one<MedicationRequest>(x, 'MedicationRequest').dosageInstruction![0]).toEqual({ text: '5mg 每日一次', timing: { code: { text: '每日一次' } }, doseAndRate: [{ doseQuantity: ucum(5, 'mg') }] });
    expect(x.warnings).toEqual(["$.yp[0].pc: frequency '每日一次' is not one this gateway knows; kept as text"]);
  });

  it('reads every-n-hours frequencies and route words', () => {
    const x = prescription([{ ypdm: 'YP0004', ypmc: '左氧氟沙星注射液', jl: 0.5, jldw: 'g', pc: 'q12h', gytj: '静滴' }]);
    const d = one<MedicationRequest>(x, 'MedicationRequest').dosageInstruction![0];
    expect([d.timing!.repeat, d.route!.coding![0].code]).toEqual([{ frequency: 1, period: 12, periodUnit: 'h' }, 'IV']);
  });

  it('refuses a drug listed twice in one prescription', () => {
    const e = thrown(() => prescription([{ ypdm: 'YP0001', ypmc: 'a', pc: 'qd' }, { ypdm: 'YP0001', ypmc: 'a', pc: 'bid' }]));
    expect([e.where, e.code]).toEqual(['$.yp[1].ypdm', 'value']);
  });
});

describe('county JSON: what the schema refuses, by JSON path', () => {
  const cases: [string, object, string, MappingError['code']][] = [
    ['a sex code outside GB/T 2261.1', { lx: 'br', brid: 'Z9', brxm: '某', xb: '3' }, '$.xb', 'code-invalid'],
    ['an empty MRN', { lx: 'br', brid: '', brxm: '某', xb: '1' }, '$.brid', 'required'],
    ['an MRN with a trailing space', { lx: 'br', brid: 'Z9 ', brxm: '某', xb: '1' }, '$.brid', 'value'],
    ['a time without seconds', { lx: 'jz', jzlsh: 'V9', brid: 'Z9', jzlx: '1', jzsj: '2025-11-05 09:00' }, '$.jzsj', 'value'],
    ['a time that is no time of day', { lx: 'jz', jzlsh: 'V9', brid: 'Z9', jzlx: '1', jzsj: '2025-11-05 25:00:00' }, '$.jzsj', 'value'],
    ['a national clinical extension as icd10', { lx: 'jz', jzlsh: 'V9', brid: 'Z9', jzlx: '1', jzsj: '2025-11-05 09:00:00', zd: [{ zddm: 'a', zdmc: 'b', icd10: 'I10.x00x002' }] }, '$.zd[0].icd10', 'value'],
    ['a report without items', { lx: 'jy', bgdh: 'JY9', brid: 'Z9', bgsj: '2025-11-05 11:40:00', xm: [] }, '$.xm', 'required'],
    ['an unknown field in an item', { lx: 'jy', bgdh: 'JY9', brid: 'Z9', bgsj: '2025-11-05 11:40:00', xm: [{ xmdm: 'a', xmmc: 'b', jg: 1, jieguo: 1 }] }, '$.xm[0].jieguo', 'structure'],
    ['a study UID that is not one', { lx: 'jc', bgdh: 'JC9', brid: 'Z9', jclx: 'CT', bgsj: '2025-11-06 16:05:00', zd: 'x', yxh: '1.2.abc' }, '$.yxh', 'value'],
    ['a dose without its unit', { lx: 'cf', cfh: 'CF9', brid: 'Z9', kfsj: '2025-11-05 09:30:00', yp: [{ ypdm: 'a', ypmc: 'b', jl: 5 }] }, '$.yp[0].jldw', 'required'],
    ['a line with no dose, frequency or route', { lx: 'cf', cfh: 'CF9', brid: 'Z9', kfsj: '2025-11-05 09:30:00', yp: [{ ypdm: 'a', ypmc: 'b' }] }, '$.yp[0]', 'required'],
    ['a fractional number of days', { lx: 'cf', cfh: 'CF9', brid: 'Z9', kfsj: '2025-11-05 09:30:00', yp: [{ ypdm: 'a', ypmc: 'b', pc: 'qd', ts: 1.5 }] }, '$.yp[0].ts', 'value'],
    ['a record type given as a number', { lx: 1, brid: 'Z9' }, '$.lx', 'required'],
  ];
  it.each(cases)('%s', (_, record, where, code) => {
    const e = thrown(() => mapOne(record));
    expect([e.where, e.code]).toEqual([where, code]);
  });

  it('says what was wrong in words', () => {
    expect(thrown(() => mapOne({ lx: 'zz' })).message).toBe('record type is not one of br, jz, jy, jc, cf, zzd');
    expect(thrown(() => mapOne({ lx: 'br', brid: 'Z9', brxm: '某', xb: '3' })).message).toBe('must be one of 1, 2, 0, 9');
    expect(thrown(() => mapOne({ lx: 'br', brid: 'Z9', brxm: '某', xb: '1', csrq: '1958/03/12' })).message).toBe('not a date (yyyy-MM-dd)');
    expect(thrown(() => mapOne({ lx: 'cf', cfh: 'CF9', brid: 'Z9', kfsj: '2025-11-05 09:30:00', yp: [{ ypdm: 'a', ypmc: 'b', jl: 'x', jldw: 'mg' }] })).message).toBe(
      'must be a positive number (5, 0.5 or "5")',
    );
  });

  it('refuses an array where one record is expected', () => {
    expect(thrown(() => county.map('[]', ctx)).where).toBe('$');
  });
});

describe('county JSON: zzd referral form', () => {
  it('maps the down-referral to the referral pair, the discharge summary as a DocumentReference it carries', () => {
    const [r] = mapFile('zzd-zhao-wei-down.json');
    const sr = one<ServiceRequest>(r, 'ServiceRequest');
    const task = one<Task>(r, 'Task');
    const doc = one<DocumentReference>(r, 'DocumentReference');
    expect(sr.id).toBe(id('referral', 'ZZ20251109001'));
    expect([directionOf(sr.category), workflowKindOf(sr.category), sr.priority, sr.authoredOn]).toEqual(['down', 'referral', 'routine', '2025-11-09T15:30:00+08:00']);
    expect([sr.subject, sr.requester, sr.performer]).toEqual([ref('Patient', 'patient', 'Z0000205'), ORG, [{ reference: 'Organization/community-centre-a' }]]);
    expect(sr.reasonCode![0]).toEqual({ text: '病情稳定，转社区继续康复治疗' });
    expect(sr.reasonCode![1].coding).toEqual(expect.arrayContaining([expect.objectContaining({ system: 'http://hl7.org/fhir/sid/icd-10', code: 'I10' })]));
    expect(sr.supportingInfo).toEqual([{ reference: `DocumentReference/${doc.id}` }]);
    expect(doc.type!.coding![0]).toEqual({ system: 'http://loinc.org', code: '18842-5', display: 'Discharge summary' });
    expect(decode(doc.content[0].attachment.data!)).toContain('氨氯地平');
    expect([task.status, task.focus, task.owner, task.requester]).toEqual(['requested', { reference: `ServiceRequest/${sr.id}` }, { reference: 'Organization/community-centre-a' }, ORG]);
    expect(r.createOnly).toContain(`urn:uuid:${task.id}`);
  });

  it('names zrjg when the receiver is the sender itself, and zzlx when it is neither 上转 nor 下转', () => {
    const form = JSON.parse(read('zzd-zhao-wei-down.json')) as Record<string, unknown>;
    expect(thrown(() => mapOne({ ...form, zrjg: 'county-hospital' })).where).toBe('$.zrjg');
    expect(thrown(() => mapOne({ ...form, zzlx: '平转' })).where).toBe('$.zzlx');
  });
});

describe('county JSON: broken demo records fail naming where', () => {
  const expected = JSON.parse(readFileSync(join(BROKEN, 'expected.json'), 'utf8')) as Record<string, { stage: 'split' | 'map'; location: string; record?: number }>;

  it('has an expectation for every broken file', () => {
    expect(readdirSync(BROKEN).filter((f) => f !== 'expected.json').sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.entries(expected))('%s', (file, want) => {
    const body = readFileSync(join(BROKEN, file), 'utf8');
    if (want.stage === 'split') {
      expect(thrown(() => county.split(body)).where).toBe(want.location);
    } else {
      const records = county.split(body);
      const e = thrown(() => county.map(records[want.record ?? 0].raw, ctx));
      expect(e).toBeInstanceOf(MappingError);
      expect(e.where).toBe(want.location);
    }
  });
});
