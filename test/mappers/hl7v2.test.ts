/**
 * The city-hospital HL7 v2 fixtures mapped and checked field by field, the broken ones
 * checked for the exact location their error names, and the guarantees every mapping keeps:
 * deterministic ids, consistent references, identical resends, MappingError and nothing else.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  ConceptMap,
  DiagnosticReport,
  Encounter,
  ImagingStudy,
  Medication,
  MedicationRequest,
  Observation,
  Patient,
  Condition,
  Resource,
  ServiceRequest,
} from '@medplum/fhirtypes';
import iconv from 'iconv-lite';
import { facilityNames, Terminology, type MapContext, type SourceConfig } from '../../mappers/context';
import { ackCodeFor, decodeEr7, mapHl7v2 } from '../../mappers/hl7v2';
import { isUnverified } from '../../mappers/identifiers';
import { resourceId } from '../../mappers/ids';
import { MappingError, type MapResult } from '../../mappers/types';
import { thrown } from '../support/thrown';

const FIXTURES = join(__dirname, '../../fixtures');
const DIR = join(FIXTURES, 'messages/city-hospital');
const BROKEN = join(FIXTURES, 'messages/broken/city-hospital');

const sources = JSON.parse(readFileSync(join(FIXTURES, 'demo-sources.json'), 'utf8')) as SourceConfig[];
const source = sources.find((s) => s.id === 'city-hospital')!;
const conceptMaps = ['lab', 'exam', 'dx', 'drug'].map(
  (k) => JSON.parse(readFileSync(join(__dirname, `../../mappers/terminology/city-hospital-${k}.json`), 'utf8')) as ConceptMap,
);
const ctx: MapContext = { source, terminology: new Terminology(conceptMaps), facilities: facilityNames(sources) };

const FACILITY = 'city-hospital';
const LIS = 'http://example.org/fhir/CodeSystem/city-hospital-lis';
const RIS = 'http://example.org/fhir/CodeSystem/city-hospital-ris';
const DX = 'http://example.org/fhir/CodeSystem/city-hospital-dx';
const DRUG = 'http://example.org/fhir/CodeSystem/city-hospital-drug';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';
const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
const MRN = 'urn:oid:2.16.156.10011.1.11.1';
const ID_CARD = 'urn:oid:2.16.156.10011.1.3';

const id = (kind: string, local: string): string => resourceId(FACILITY, kind, local);
const ref = (type: string, kind: string, local: string): string => `${type}/${id(kind, local)}`;
const metaSource = (controlId: string): { source: string } => ({ source: `urn:consortium:source:city-hospital#${controlId}` });

const text = (name: string): string => decodeEr7(readFileSync(join(DIR, name))).text;
const mapText = (t: string): MapResult => mapHl7v2(t, ctx);
const map = (name: string): MapResult => mapText(text(name));

function all<T extends Resource>(r: MapResult, type: T['resourceType']): T[] {
  return r.bundle.entry!.map((e) => e.resource!).filter((x): x is T => x.resourceType === type);
}
function one<T extends Resource>(r: MapResult, type: T['resourceType']): T {
  const list = all<T>(r, type);
  expect(list).toHaveLength(1);
  return list[0];
}
const types = (r: MapResult): string[] => r.bundle.entry!.map((e) => e.resource!.resourceType);
const fullUrl = (resourceId: string): string => `urn:uuid:${resourceId}`;


/** Replaces one field of the first segment `segment` of an ER7 text. */
function withField(t: string, segment: string, field: number, value: string): string {
  return t
    .split('\r')
    .map((line, _i, lines) => {
      if (!line.startsWith(`${segment}|`) || lines.find((l) => l.startsWith(`${segment}|`)) !== line) return line;
      const fields = line.split('|');
      while (fields.length <= field) fields.push('');
      fields[segment === 'MSH' ? field - 1 : field] = value;
      return fields.join('|');
    })
    .join('\r');
}

const PATIENT_WANG: Patient = {
  resourceType: 'Patient',
  id: id('patient', '10000101'),
  identifier: [
    { use: 'usual', type: { coding: [{ system: V2_0203, code: 'MR', display: 'Medical record number' }], text: '病案号' }, system: MRN, value: '10000101' },
    { use: 'official', type: { coding: [{ system: V2_0203, code: 'NI', display: 'National unique individual identifier' }], text: '居民身份证' }, system: ID_CARD, value: '339901195803120317' },
  ],
  name: [{ use: 'official', text: '王小明', family: '王', given: ['小明'] }],
  gender: 'male',
  birthDate: '1958-03-12',
  telecom: [{ system: 'phone', value: '17000000101', use: 'mobile' }],
  address: [
    {
      use: 'home',
      text: '浙江省云溪市青湖区湖滨街道湖滨路18号',
      line: ['湖滨街道湖滨路18号'],
      city: '云溪市',
      district: '青湖区',
      state: '浙江省',
      postalCode: '339900',
      country: 'CHN',
    },
  ],
  managingOrganization: { reference: 'Organization/city-hospital' },
};
const HEALTH_CARD = { use: 'official', type: { coding: [{ system: V2_0203, code: 'HC' }], text: '居民健康卡' }, system: 'urn:oid:2.16.156.10011.1.19', value: 'E3399010000101' };
const PATIENT_REF = { wang: ref('Patient', 'patient', '10000101'), li: ref('Patient', 'patient', '10000102'), chen: ref('Patient', 'patient', '10000103'), zhang: ref('Patient', 'patient', '10000104') };
const practitioner = (staffId: string, display: string): object => ({ identifier: { system: 'urn:consortium:source:city-hospital:practitioner', value: staffId }, display });
const placer = (value: string): object => ({ use: 'official', type: { coding: [{ system: V2_0203, code: 'PLAC' }] }, system: 'urn:consortium:source:city-hospital:placer-order', value });
const filler = (value: string): object => ({ use: 'official', type: { coding: [{ system: V2_0203, code: 'FILL' }] }, system: 'urn:consortium:source:city-hospital:filler-order', value });
const loinc = (code: string, display: string): object => ({ system: LOINC, code, display });
const decoded = (attachment: { data?: string }): string => Buffer.from(attachment.data!, 'base64').toString('utf8');

const FIXTURE_FILES = readdirSync(DIR).filter((f) => f.endsWith('.hl7'));

describe('every city-hospital fixture', () => {
  it('is here: one file per kind of message the brief names', () => {
    expect(FIXTURE_FILES.sort()).toEqual([
      'adt-a01-li-xiuying-gb18030.hl7',
      'adt-a03-li-xiuying-discharge.hl7',
      'adt-a04-wang-xiaoming.hl7',
      'adt-a08-wang-xiaoming-new-phone.hl7',
      'adt-a40-chen-jianguo-merge.hl7',
      'omg-o19-cbc-wang-xiaoming.hl7',
      'orm-o01-ct-chest-chen-jianguo.hl7',
      'oru-r01-cbc-gb18030.hl7',
      'oru-r01-chemistry-zhang-lijuan.hl7',
      'oru-r01-ct-chest-gb18030.hl7',
      'oru-r01-ecg-wang-xiaoming.hl7',
      'oru-r01-pathology-li-xiuying.hl7',
      'rde-o11-zhang-lijuan-diabetes.hl7',
      'ref-i12-wang-xiaoming-down.hl7',
      'ref-i14-wang-xiaoming-cancel.hl7',
    ]);
  });

  it.each(FIXTURE_FILES)('%s: PUTs to deterministic ids with meta.source, references that resolve, identical on resend', (name) => {
    const first = map(name);
    const again = map(name);
    expect(again).toEqual(first);
    expect(JSON.stringify(again)).toBe(JSON.stringify(first));

    expect(first.bundle.type).toBe('transaction');
    const controlId = text(name).split('\r')[0].split('|')[9];
    const inBundle = new Set<string>();
    for (const e of first.bundle.entry!) {
      const r = e.resource as Resource & { id: string };
      expect(e.fullUrl).toBe(`urn:uuid:${r.id}`);
      expect(e.request).toEqual({ method: 'PUT', url: `${r.resourceType}/${r.id}` });
      expect(r.meta).toEqual(metaSource(controlId));
      inBundle.add(`${r.resourceType}/${r.id}`);
    }
    expect(inBundle.size).toBe(first.bundle.entry!.length);
    for (const url of first.createOnly) expect(first.bundle.entry!.some((e) => e.fullUrl === url)).toBe(true);
    // Every reference to a clinical resource points into the bundle, except the facility's
    // Organization (and a referral's receiving one), a merge's retired Patient, and a result's order (the ORM/OMG writes it).
    const references = JSON.stringify(first.bundle).match(/"reference":"[^"]+"/g) ?? [];
    const isResult = name.startsWith('oru-');
    for (const r of references) {
      const target = r.slice('"reference":"'.length, -1);
      if (target.startsWith('Organization/') || target === first.merge?.retired || (isResult && target.startsWith('ServiceRequest/'))) continue;
      expect(inBundle).toContain(target);
    }
  });

  it.each(FIXTURE_FILES)('%s: survives being cut short or garbled with a MappingError at worst', (name) => {
    const t = text(name);
    const outcomes = new Set<string>();
    for (let cut = 0; cut < t.length; cut += 3) {
      for (const variant of [t.slice(0, cut), `${t.slice(0, cut)}${'|^~\\&'[cut % 5]}${t.slice(cut + 1)}`]) {
        try {
          mapText(variant);
          outcomes.add('mapped');
        } catch (e) {
          expect(e).toBeInstanceOf(MappingError);
          expect((e as MappingError).where).not.toBe('');
          outcomes.add('MappingError');
        }
      }
    }
    expect(outcomes).toEqual(new Set(['mapped', 'MappingError']));
  });
});

describe('ADT', () => {
  it('A04 registers 王小明 (UTF-8): the Patient with MRN, ID number, health card, and the outpatient Encounter', () => {
    const r = map('adt-a04-wang-xiaoming.hl7');
    expect(types(r)).toEqual(['Patient', 'Encounter']);
    expect([r.createOnly, r.unmapped, r.warnings, r.merge]).toEqual([[], [], [], undefined]);
    expect(one<Patient>(r, 'Patient')).toEqual({
      ...PATIENT_WANG,
      meta: metaSource('ADT202511030001'),
      identifier: [...PATIENT_WANG.identifier!, HEALTH_CARD],
    });
    expect(one<Encounter>(r, 'Encounter')).toEqual({
      resourceType: 'Encounter',
      id: id('encounter', 'MZ202511030101'),
      meta: metaSource('ADT202511030001'),
      identifier: [
        { use: 'usual', type: { coding: [{ system: V2_0203, code: 'VN' }], text: '就诊流水号' }, system: 'urn:consortium:source:city-hospital:visit-number', value: 'MZ202511030101' },
      ],
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
      subject: { reference: PATIENT_REF.wang },
      participant: [
        {
          type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND', display: 'attender' }] }],
          individual: practitioner('D0123', '刘建华'),
        },
      ],
      period: { start: '2025-11-03T08:30:00+08:00' },
      location: [{ location: { display: '心内科门诊' } }],
      serviceProvider: { reference: 'Organization/city-hospital' },
    });
  });

  it('A08 updates the same Patient with the new mobile number, and makes no Encounter without a visit number', () => {
    const r = map('adt-a08-wang-xiaoming-new-phone.hl7');
    expect(types(r)).toEqual(['Patient']);
    expect(r.createOnly).toEqual([]);
    expect(one<Patient>(r, 'Patient')).toEqual({ ...PATIENT_WANG, meta: metaSource('ADT202511100003'), telecom: [{ system: 'phone', value: '17000000111', use: 'mobile' }] });
  });

  it('A01 (GB18030) admits 李秀英: inpatient Encounter in progress, two admitting diagnoses linked to it', () => {
    const r = map('adt-a01-li-xiuying-gb18030.hl7');
    expect(types(r)).toEqual(['Patient', 'Encounter', 'Condition', 'Condition']);
    const patient = one<Patient>(r, 'Patient');
    expect(patient.id).toBe(id('patient', '10000102'));
    expect(patient.name).toEqual([{ use: 'official', text: '李秀英', family: '李', given: ['秀英'] }]);
    expect([patient.gender, patient.birthDate]).toEqual(['female', '1962-07-25']);
    expect(patient.address![0].text).toBe('浙江省云溪市临溪县溪口镇下湾村27号');

    const encounter = one<Encounter>(r, 'Encounter');
    expect(encounter.id).toBe(id('encounter', 'ZY202511050102'));
    expect(encounter.status).toBe('in-progress');
    expect(encounter.class.code).toBe('IMP');
    expect(encounter.period).toEqual({ start: '2025-11-05T10:15:00+08:00' });
    expect(encounter.location).toEqual([{ location: { display: '心内科一病区 302室 12床' } }]);
    expect(encounter.participant!.map((p) => [p.type![0].coding![0].code, p.individual])).toEqual([
      ['ATND', practitioner('D0123', '刘建华')],
      ['ADM', practitioner('D0456', '周敏')],
    ]);

    const [chd, htn] = all<Condition>(r, 'Condition');
    expect(chd).toEqual({
      resourceType: 'Condition',
      id: id('condition', 'ZY202511050102|99DX|ZD003'),
      meta: metaSource('ADT202511050007'),
      verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'provisional' }] },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }] }],
      code: {
        coding: [
          { system: ICD10, code: 'I25.1', display: 'Atherosclerotic heart disease' },
          { system: DX, code: 'ZD003', display: '冠状动脉粥样硬化性心脏病' },
        ],
        text: '冠状动脉粥样硬化性心脏病',
      },
      subject: { reference: PATIENT_REF.li },
      encounter: { reference: `Encounter/${encounter.id}` },
      recordedDate: '2025-11-05T10:15:00+08:00',
    });
    expect(htn.code).toEqual({ coding: [{ system: ICD10, code: 'I10', display: '原发性高血压' }], text: '原发性高血压' });
    expect(encounter.diagnosis).toEqual([
      { condition: { reference: `Condition/${chd.id}` }, use: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/diagnosis-role', code: 'AD' }] }, rank: 1 },
      { condition: { reference: `Condition/${htn.id}` }, use: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/diagnosis-role', code: 'AD' }] }, rank: 2 },
    ]);
    expect(r.unmapped).toEqual([]);
  });

  it('A03 discharges the same visit: the same Encounter finished, the same Conditions confirmed, a new one added', () => {
    const admit = map('adt-a01-li-xiuying-gb18030.hl7');
    const r = map('adt-a03-li-xiuying-discharge.hl7');
    const encounter = one<Encounter>(r, 'Encounter');
    expect(encounter.id).toBe(one<Encounter>(admit, 'Encounter').id);
    expect(encounter.status).toBe('finished');
    expect(encounter.period).toEqual({ start: '2025-11-05T10:15:00+08:00', end: '2025-11-12T09:30:00+08:00' });
    const conditions = all<Condition>(r, 'Condition');
    expect(conditions.map((c) => c.id).slice(0, 2)).toEqual(all<Condition>(admit, 'Condition').map((c) => c.id));
    expect(conditions.map((c) => c.verificationStatus!.coding![0].code)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    expect(conditions[2].code!.coding).toEqual([
      { system: ICD10, code: 'E11.9', display: 'Type 2 diabetes mellitus without complications' },
      { system: DX, code: 'ZD002', display: '2型糖尿病' },
    ]);
    expect(encounter.diagnosis!.map((d) => [d.condition.reference, d.use!.coding![0].code, d.rank])).toEqual(
      conditions.map((c, i) => [`Condition/${c.id}`, 'DD', i + 1]),
    );
  });

  it('A40 merges the duplicate MRN 10000193 into 10000103: the survivor keeps it as an old identifier', () => {
    const r = map('adt-a40-chen-jianguo-merge.hl7');
    expect(types(r)).toEqual(['Patient']);
    expect(r.createOnly).toEqual([]);
    expect(r.merge).toEqual({ survivor: PATIENT_REF.chen, retired: ref('Patient', 'patient', '10000193') });
    const survivor = one<Patient>(r, 'Patient');
    expect(survivor.id).toBe(id('patient', '10000103'));
    expect(survivor.identifier!.map((i) => [i.use, i.system, i.value])).toEqual([
      ['usual', MRN, '10000103'],
      ['official', ID_CARD, '339902197111090159'],
      ['old', MRN, '10000193'],
    ]);
    expect(survivor.link).toEqual([{ other: { reference: ref('Patient', 'patient', '10000193') }, type: 'replaces' }]);
  });

  it('keeps an ID number that fails its check, flagged as unverified, and warns without quoting it', () => {
    const r = mapText(text('adt-a04-wang-xiaoming.hl7').replace('339901195803120317', '339901195803120318'));
    const idCard = one<Patient>(r, 'Patient').identifier!.find((i) => i.system === ID_CARD)!;
    expect(idCard.use).toBe('temp');
    expect(idCard.value).toBe('339901195803120318');
    expect(isUnverified(idCard)).toBe(true);
    expect(r.warnings).toEqual(['PID-3 (repetition 2): resident ID number fails its check (check character does not match); stored as unverified']);
  });

  it('reads a one-component name as the full name, GB/T 2261.1 sex codes, and warns on an unknown sex code', () => {
    const base = text('adt-a04-wang-xiaoming.hl7');
    const full = one<Patient>(mapText(withField(withField(base, 'PID', 5, '王小明'), 'PID', 8, '1')), 'Patient');
    expect(full.name).toEqual([{ text: '王小明' }]);
    expect(full.gender).toBe('male');
    expect(one<Patient>(mapText(withField(base, 'PID', 8, '2')), 'Patient').gender).toBe('female');
    const odd = mapText(withField(base, 'PID', 8, 'X'));
    expect(one<Patient>(odd, 'Patient').gender).toBeUndefined();
    expect(odd.warnings).toEqual(["PID-8: sex 'X' is neither an HL7 (M/F/O/U) nor a GB/T 2261.1 (1/2/0/9) code; left out"]);
  });

  it("takes this facility's MRN, not another facility's, and keeps the other as a secondary identifier", () => {
    const t = withField(
      text('adt-a04-wang-xiaoming.hl7'),
      'PID',
      3,
      'Z0000201^^^COUNTYHOSP&2.16.156.10011.1.11.2&ISO^MR~10000101^^^CITYHOSP&2.16.156.10011.1.11.1&ISO^MR',
    );
    const patient = one<Patient>(mapText(t), 'Patient');
    expect(patient.id).toBe(id('patient', '10000101'));
    expect(patient.identifier!.map((i) => [i.use, i.system, i.value])).toEqual([
      ['usual', MRN, '10000101'],
      ['secondary', 'urn:oid:2.16.156.10011.1.11.2', 'Z0000201'],
    ]);
  });

  it('requires a visit (PV1-19) for the events that open or close one', () => {
    const e = thrown(() => mapText(withField(text('adt-a01-li-xiuying-gb18030.hl7'), 'PV1', 19, '')));
    expect([e.where, e.code]).toEqual(['PV1-19', 'required']);
  });
});

describe('ORU^R01 lab results', () => {
  const WBC_RANGE = { low: { value: 3.5, unit: '10^9/L', system: UCUM, code: '10*9/L' }, high: { value: 9.5, unit: '10^9/L', system: UCUM, code: '10*9/L' }, text: '3.5-9.5' };

  it('decodes the GB18030 CBC to the same text as its UTF-8 twin, and maps both alike', () => {
    const bytes = readFileSync(join(DIR, 'oru-r01-cbc-gb18030.hl7'));
    const { text: t, charset } = decodeEr7(bytes);
    expect(charset).toBe('gb18030');
    expect(t).toContain('PID|1||10000101^^^CITYHOSP&2.16.156.10011.1.11.1&ISO^MR~339901195803120317^^^&2.16.156.10011.1.3&ISO^NI||王^小明^^^^^L');
    expect(t).toContain('CBC^血常规^99LIS');
    const utf8 = Buffer.from(t.replace('GB 18030-2000', 'UNICODE UTF-8'), 'utf8');
    expect(decodeEr7(utf8).text).toBe(t.replace('GB 18030-2000', 'UNICODE UTF-8'));
    expect(mapText(decodeEr7(utf8).text)).toEqual(mapText(t));
    expect(decodeEr7(iconv.encode(t.replace('GB 18030-2000', ''), 'gb18030'), 'GB18030').text).toBe(t.replace('GB 18030-2000', ''));
  });

  it('maps the CBC: create-only Patient and Encounter, a final DiagnosticReport of 8 results based on the order', () => {
    const r = map('oru-r01-cbc-gb18030.hl7');
    expect(types(r)).toEqual(['Patient', 'Encounter', ...Array(8).fill('Observation'), 'DiagnosticReport']);
    const order = ref('ServiceRequest', 'order', 'HIS202511030011');
    expect(r.createOnly).toEqual([fullUrl(id('patient', '10000101')), fullUrl(id('encounter', 'MZ202511030101'))]);
    expect([r.unmapped, r.warnings]).toEqual([[], []]);
    expect(one<Patient>(r, 'Patient')).toEqual({ ...PATIENT_WANG, meta: metaSource('LIS202511030021') });
    expect(one<Encounter>(r, 'Encounter').status).toBe('unknown');

    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect(report).toEqual({
      resourceType: 'DiagnosticReport',
      id: id('report', 'LIS202511030021'),
      meta: metaSource('LIS202511030021'),
      identifier: [filler('LIS202511030021')],
      basedOn: [{ reference: order }],
      status: 'final',
      category: [{ coding: [{ system: V2_0074, code: 'LAB', display: 'Laboratory' }] }, { coding: [{ system: V2_0074, code: 'HM' }] }],
      code: { coding: [loinc('58410-2', 'CBC panel - Blood by Automated count'), { system: LIS, code: 'CBC', display: '血常规' }], text: '血常规' },
      subject: { reference: PATIENT_REF.wang },
      encounter: { reference: ref('Encounter', 'encounter', 'MZ202511030101') },
      effectiveDateTime: '2025-11-03T08:45:00+08:00',
      issued: '2025-11-03T09:30:00+08:00',
      performer: [{ reference: 'Organization/city-hospital' }],
      resultsInterpreter: [{ display: '陈静' }],
      result: [1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({ reference: ref('Observation', 'observation', `LIS202511030021|${n}`) })),
      conclusion: '标本轻度溶血，结果仅供参考',
    });

    const wbc = all<Observation>(r, 'Observation')[0];
    expect(wbc).toEqual({
      resourceType: 'Observation',
      id: id('observation', 'LIS202511030021|1'),
      meta: metaSource('LIS202511030021'),
      basedOn: [{ reference: order }],
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
      code: { coding: [loinc('6690-2', 'Leukocytes [#/volume] in Blood by Automated count'), { system: LIS, code: 'WBC', display: '白细胞计数' }], text: '白细胞计数' },
      subject: { reference: PATIENT_REF.wang },
      encounter: { reference: ref('Encounter', 'encounter', 'MZ202511030101') },
      effectiveDateTime: '2025-11-03T08:45:00+08:00',
      performer: [{ reference: 'Organization/city-hospital' }],
      valueQuantity: { value: 11.2, unit: '10^9/L', system: UCUM, code: '10*9/L' },
      interpretation: [{ coding: [{ system: INTERPRETATION, code: 'H', display: 'High' }] }],
      referenceRange: [WBC_RANGE],
    });
  });

  it('maps each CBC result: LOINC beside the local code, value and UCUM unit, range, flag, time, notes', () => {
    const observations = all<Observation>(map('oru-r01-cbc-gb18030.hl7'), 'Observation');
    const rows = observations.map((o) => [
      o.code.coding!.map((c) => c.code).join(' '),
      o.valueQuantity!.value,
      o.valueQuantity!.unit,
      o.valueQuantity!.code,
      o.referenceRange![0].low!.value,
      o.referenceRange![0].high!.value,
      o.interpretation![0].coding![0].code,
      o.effectiveDateTime,
      o.status,
    ]);
    const at = '2025-11-03T08:45:00+08:00';
    expect(rows).toEqual([
      ['6690-2 WBC', 11.2, '10^9/L', '10*9/L', 3.5, 9.5, 'H', at, 'final'],
      ['789-8 RBC', 4.12, '10*12/L', '10*12/L', 4.3, 5.8, 'L', at, 'final'],
      ['718-7 HGB', 128, 'g/L', 'g/L', 130, 175, 'L', at, 'final'],
      ['4544-3 HCT', 38.5, '%', '%', 40, 50, 'L', at, 'final'],
      ['777-3 PLT', 236, '10*9/L', '10*9/L', 125, 350, 'N', at, 'final'],
      ['787-2 MCV', 93.4, 'fL', 'fL', 82, 100, 'N', at, 'final'],
      ['785-6 MCH', 31.1, 'pg', 'pg', 27, 34, 'N', at, 'final'],
      ['770-8 NEUT%', 78.6, '%', '%', 40, 75, 'H', '2025-11-03T09:00:00+08:00', 'final'],
    ]);
    expect(observations.map((o) => o.note)).toEqual([...Array(7).fill(undefined), [{ text: '中性粒细胞比例升高，提示细菌感染可能' }]]);
  });

  it('maps the chemistry: molar units, a corrected result, bounds, SN, coded and text results, unmapped codes', () => {
    const r = map('oru-r01-chemistry-zhang-lijuan.hl7');
    expect(types(r)).toEqual(['Patient', ...Array(13).fill('Observation'), 'DiagnosticReport']);
    expect(r.createOnly).toEqual([fullUrl(id('patient', '10000104'))]);
    expect(r.warnings).toEqual([]);
    expect(r.unmapped).toEqual([
      { system: LIS, code: 'SHQX', display: '生化全项', kind: 'lab' },
      { system: LIS, code: 'XQWG', display: '血清外观', kind: 'lab' },
    ]);
    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect(report.status).toBe('corrected');
    expect(report.code).toEqual({ coding: [{ system: LIS, code: 'SHQX', display: '生化全项' }], text: '生化全项' });
    expect(report.category!.map((c) => c.coding![0].code)).toEqual(['LAB', 'CH']);
    expect([report.basedOn, report.encounter, report.conclusion]).toEqual([undefined, undefined, undefined]);
    expect(report.resultsInterpreter).toEqual([{ display: '孙悦' }]);

    const byCode = new Map(all<Observation>(r, 'Observation').map((o) => [o.code.coding!.find((c) => c.system === LIS)!.code, o]));
    expect(byCode.get('GLU')!.code.coding![0]).toEqual(loinc('14749-6', 'Glucose [Moles/volume] in Serum or Plasma'));
    expect(byCode.get('CREA')!.valueQuantity).toEqual({ value: 68, unit: 'μmol/L', system: UCUM, code: 'umol/L' });
    const k = byCode.get('K')!;
    expect([k.status, k.note, k.interpretation![0].coding![0].code]).toEqual(['corrected', [{ text: '复查后更正：原报告 2.3 mmol/L 系录入错误' }], 'L']);
    expect(byCode.get('TC')!.referenceRange).toEqual([{ high: { value: 5.2, unit: 'mmol/L', system: UCUM, code: 'mmol/L' }, text: '<5.2' }]);
    const egfr = byCode.get('EGFR')!;
    expect(egfr.valueQuantity).toEqual({ value: 90, comparator: '>', unit: 'mL/min/1.73m2', system: UCUM, code: 'mL/min/{1.73_m2}' });
    expect(egfr.referenceRange).toEqual([{ low: { value: 90, unit: 'mL/min/1.73m2', system: UCUM, code: 'mL/min/{1.73_m2}' }, text: '>90' }]);
    expect(egfr.interpretation).toBeUndefined();
    const hbsag = byCode.get('HBSAG')!;
    expect(hbsag.valueCodeableConcept).toEqual({ coding: [{ system: 'http://snomed.info/sct', code: '260385009', display: '阴性' }], text: '阴性' });
    expect(hbsag.referenceRange).toEqual([{ text: '阴性' }]);
    const serum = byCode.get('XQWG')!;
    expect(serum.valueString).toBe('轻度脂血');
    expect(serum.code).toEqual({ coding: [{ system: LIS, code: 'XQWG', display: '血清外观' }], text: '血清外观' });
    expect(new Set(all<Observation>(r, 'Observation').map((o) => o.effectiveDateTime))).toEqual(new Set(['2025-11-07T08:15:00+08:00']));
  });

  it('keeps a unit it cannot code as text and warns, naming the OBX', () => {
    const r = mapText(text('oru-r01-cbc-gb18030.hl7').replace('|128|g/L|', '|128|格令|'));
    expect(all<Observation>(r, 'Observation')[2].valueQuantity).toEqual({ value: 128, unit: '格令' });
    expect(r.warnings).toEqual(["OBX[3]-6: unit '格令' has no UCUM mapping; kept as text"]);
  });

  it('reads NM with a comparator, SN ranges and ratios, and unknown flags as warnings', () => {
    const base = text('oru-r01-chemistry-zhang-lijuan.hl7');
    const r = mapText(
      base
        .replace('|NM|GLU^葡萄糖^99LIS||7.8|', '|NM|GLU^葡萄糖^99LIS||<1.1|')
        .replace('|SN|EGFR^估算肾小球滤过率^99LIS||>^90|', '|SN|EGFR^估算肾小球滤过率^99LIS||^60^-^90|')
        .replace('|NM|ALT^丙氨酸氨基转移酶^99LIS||23|U/L|7-40|N|', '|SN|ALT^丙氨酸氨基转移酶^99LIS||^1^:^128||7-40|?|'),
    );
    const [glu, , , alt] = all<Observation>(r, 'Observation');
    expect(glu.valueQuantity).toEqual({ value: 1.1, comparator: '<', unit: 'mmol/L', system: UCUM, code: 'mmol/L' });
    expect(all<Observation>(r, 'Observation')[10].valueRange).toEqual({
      low: { value: 60, unit: 'mL/min/1.73m2', system: UCUM, code: 'mL/min/{1.73_m2}' },
      high: { value: 90, unit: 'mL/min/1.73m2', system: UCUM, code: 'mL/min/{1.73_m2}' },
    });
    expect(alt.valueRatio).toEqual({ numerator: { value: 1 }, denominator: { value: 128 } });
    expect(alt.interpretation).toBeUndefined();
    expect(r.warnings).toEqual(["OBX[4]-8: abnormal flag '?' is not an HL7 table 0078 code; left out"]);
  });

  it('names OBX-5 of an NM value that is no number, whatever its components', () => {
    const e = thrown(() => mapText(text('oru-r01-cbc-gb18030.hl7').replace('|236|10*9/L|', '|^236|10*9/L|')));
    expect([e.where, e.code, e.message]).toEqual(['OBX[5]-5', 'value', "OBX[5]-5 '^236' is not a number, as OBX-2 NM says"]);
  });

  it('derives the report status from its results when OBR-25 is empty', () => {
    const cbc = text('oru-r01-cbc-gb18030.hl7');
    const preliminary = mapText(withField(cbc, 'OBR', 25, '').replace('|H|||F\r', '|H|||P\r'));
    expect(one<DiagnosticReport>(preliminary, 'DiagnosticReport').status).toBe('preliminary');
    expect(one<DiagnosticReport>(mapText(withField(cbc, 'OBR', 25, '')), 'DiagnosticReport').status).toBe('final');
  });

  it('names the OBX of a duplicate set id, and of a bad status', () => {
    const cbc = text('oru-r01-cbc-gb18030.hl7');
    const duplicate = thrown(() => mapText(cbc.replace('OBX|2|NM|RBC', 'OBX|1|NM|RBC')));
    expect([duplicate.where, duplicate.code]).toEqual(['OBX[2]-1', 'value']);
    const status = thrown(() => mapText(cbc.replace('|L|||F\r', '|L|||Q\r')));
    expect([status.where, status.code]).toEqual(['OBX[2]-11', 'code-invalid']);
  });
});

describe('ORU^R01 imaging, ECG and pathology reports', () => {
  const UID = '1.2.156.600734.1.20251106.103';

  it('maps the CT report (GB18030): narrative, conclusion, ImagingStudy by Study Instance UID, based on the order', () => {
    const r = map('oru-r01-ct-chest-gb18030.hl7');
    expect(types(r)).toEqual(['Patient', 'Encounter', 'ImagingStudy', 'DiagnosticReport']);
    expect([r.unmapped, r.warnings]).toEqual([[], []]);
    const order = ref('ServiceRequest', 'order', 'HIS202511060031');
    expect(r.createOnly).toEqual([fullUrl(id('patient', '10000103')), fullUrl(id('encounter', 'MZ202511060103'))]);

    expect(one<ImagingStudy>(r, 'ImagingStudy')).toEqual({
      resourceType: 'ImagingStudy',
      id: id('study', UID),
      meta: metaSource('RIS202511060041'),
      identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${UID}` }],
      status: 'available',
      modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }],
      subject: { reference: PATIENT_REF.chen },
      encounter: { reference: ref('Encounter', 'encounter', 'MZ202511060103') },
      started: '2025-11-06T10:10:00+08:00',
      basedOn: [{ reference: order }],
      interpreter: [{ display: '吴海涛' }],
      description: '胸部CT平扫',
    });

    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect(report.id).toBe(id('report', 'RIS202511060041'));
    expect(report.basedOn).toEqual([{ reference: order }]);
    expect(report.category!.map((c) => c.coding![0].code)).toEqual(['RAD', 'CT']);
    expect(report.code.coding).toEqual([loinc('29252-4', 'CT Chest WO contrast'), { system: RIS, code: 'CT0101', display: '胸部CT平扫' }]);
    expect(report.result).toBeUndefined();
    expect(report.imagingStudy).toEqual([{ reference: ref('ImagingStudy', 'study', UID) }]);
    expect(report.resultsInterpreter).toEqual([{ display: '吴海涛' }]);
    expect(report.conclusion).toBe('1. 右肺上叶尖段小结节，建议 6 个月后复查。\n2. 慢性支气管炎改变。');
    expect(report.presentedForm).toHaveLength(1);
    expect(report.presentedForm![0].contentType).toBe('text/plain; charset=utf-8');
    expect(report.presentedForm![0].title).toBe('胸部CT平扫');
    expect(decoded(report.presentedForm![0])).toBe(
      [
        '【检查所见】',
        '胸廓对称，气管居中。双肺纹理增多、紊乱，右肺上叶尖段见一实性小结节，大小约 6mm×5mm，边界清楚。',
        '肺窗&纵隔窗示纵隔内未见肿大淋巴结，心影大小形态正常，双侧胸腔未见积液。',
        '',
        '【诊断意见】',
        '1. 右肺上叶尖段小结节，建议 6 个月后复查。',
        '2. 慢性支气管炎改变。',
      ].join('\n'),
    );
  });

  it('finds the Study Instance UID in ZDS-1, in `<code>&UID`, in an RP value; rejects one that is not a UID', () => {
    const ct = text('oru-r01-ct-chest-gb18030.hl7');
    const withoutUidObx = ct.split('\r').filter((l) => !l.startsWith('OBX|3|')).join('\r');
    const studies = (t: string): string[] => all<ImagingStudy>(mapText(t), 'ImagingStudy').map((s) => s.identifier![0].value!);
    expect(studies(withoutUidObx)).toEqual([]);
    expect(studies(`${withoutUidObx}\rZDS|1.2.156.600734.9^PACS^Application^DICOM`)).toEqual(['urn:oid:1.2.156.600734.9']);
    expect(studies(ct.replace('113014^检查UID^DCM', 'CT0101&UID^检查UID'))).toEqual([`urn:oid:${UID}`]);
    expect(studies(ct.replace('OBX|3|ST|113014^检查UID^DCM', 'OBX|3|RP|STUDY^影像'))).toEqual([`urn:oid:${UID}`]);
    const bad = thrown(() => mapText(ct.replace(UID, '1.2.156.x')));
    expect([bad.where, bad.code]).toEqual(['OBX[3]-5', 'value']);
  });

  it('takes an encapsulated PDF (ED) as a presented form', () => {
    const pdf = Buffer.from('%PDF-1.4 demo').toString('base64');
    const r = mapText(`${text('oru-r01-ct-chest-gb18030.hl7')}\rOBX|4|ED|PDF^报告单||RIS^AP^PDF^Base64^${pdf}||||||F`);
    const forms = one<DiagnosticReport>(r, 'DiagnosticReport').presentedForm!;
    expect(forms.map((f) => f.contentType)).toEqual(['text/plain; charset=utf-8', 'application/pdf']);
    expect(forms[1]).toEqual({ contentType: 'application/pdf', data: pdf, title: '报告单' });
    const bad = thrown(() => mapText(`${text('oru-r01-ct-chest-gb18030.hl7')}\rOBX|4|ED|PDF^报告单||RIS^AP^PDF^Base64^not base64!||||||F`));
    expect(bad.where).toBe('OBX[4]-5.5');
  });

  it('maps the ECG: measured intervals as Observations, findings and diagnosis as the narrative', () => {
    const r = map('oru-r01-ecg-wang-xiaoming.hl7');
    expect(types(r)).toEqual(['Patient', 'Encounter', ...Array(4).fill('Observation'), 'DiagnosticReport']);
    expect(r.createOnly).toEqual([fullUrl(id('patient', '10000101')), fullUrl(id('encounter', 'MZ202511030101'))]);
    const observations = all<Observation>(r, 'Observation');
    expect(observations.map((o) => [o.code.coding![0].code, o.valueQuantity!.value, o.valueQuantity!.code, o.category![0].coding![0].code])).toEqual([
      ['8867-4', 72, '/min', 'procedure'],
      ['8625-6', 168, 'ms', 'procedure'],
      ['8633-0', 96, 'ms', 'procedure'],
      ['8636-3', 421, 'ms', 'procedure'],
    ]);
    expect(observations[0].valueQuantity!.unit).toBe('次/分');
    expect(observations[3].referenceRange).toEqual([{ high: { value: 450, unit: 'ms', system: UCUM, code: 'ms' }, text: '<450' }]);
    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect(report.category).toEqual([{ coding: [{ system: V2_0074, code: 'EC', display: 'Electrocardiac (e.g., EKG, EEC, Holter)' }] }]);
    expect(report.code.coding![0]).toEqual(loinc('11524-6', 'EKG study'));
    expect(report.result).toEqual(observations.map((o) => ({ reference: `Observation/${o.id}` })));
    expect([report.basedOn, report.imagingStudy]).toEqual([undefined, undefined]);
    expect(report.conclusion).toBe('1. 窦性心律\n2. 正常范围心电图');
    expect(decoded(report.presentedForm![0])).toBe(
      '【检查所见】\n窦性心律，心率 72 次/分。P 波、QRS 波群形态及时限正常，ST-T 未见明显异常。\n\n【心电图诊断】\n1. 窦性心律\n2. 正常范围心电图',
    );
  });

  it('maps the pathology report: sections in order, the diagnosis as conclusion, the specimen note last', () => {
    const r = map('oru-r01-pathology-li-xiuying.hl7');
    expect(types(r)).toEqual(['Patient', 'Encounter', 'DiagnosticReport']);
    expect(one<Encounter>(r, 'Encounter').id).toBe(one<Encounter>(map('adt-a01-li-xiuying-gb18030.hl7'), 'Encounter').id);
    expect(one<Encounter>(r, 'Encounter').class.code).toBe('IMP');
    const report = one<DiagnosticReport>(r, 'DiagnosticReport');
    expect(report.identifier).toEqual([filler('BL2025-01208')]);
    expect(report.category).toEqual([{ coding: [{ system: V2_0074, code: 'SP', display: 'Surgical Pathology' }] }]);
    expect(report.code.coding![0]).toEqual(loinc('11526-1', 'Pathology study'));
    expect(report.conclusion).toBe('（胃窦）慢性非萎缩性胃炎，轻度活动性。');
    expect(report.resultsInterpreter).toEqual([{ display: '冯雪' }]);
    expect(decoded(report.presentedForm![0]).split('\n\n')).toEqual([
      '【大体所见】\n送检灰白色碎组织 3 块，直径 0.2～0.3cm，全部取材。',
      '【镜下所见】\n胃窦黏膜慢性炎症，固有层淋巴细胞、浆细胞浸润，未见肠上皮化生及异型增生。',
      '【病理诊断】\n（胃窦）慢性非萎缩性胃炎，轻度活动性。',
      '【备注】\n标本：胃镜下胃窦活检组织，10% 中性福尔马林固定。',
    ]);
  });
});

describe('orders', () => {
  it('ORM^O01: the CT order as the HIS wrote it, the ServiceRequest the CT report is based on', () => {
    const r = map('orm-o01-ct-chest-chen-jianguo.hl7');
    expect(types(r)).toEqual(['Patient', 'Encounter', 'ServiceRequest']);
    expect(r.createOnly).toEqual([fullUrl(id('patient', '10000103')), fullUrl(id('encounter', 'MZ202511060103'))]);
    expect(one<ServiceRequest>(r, 'ServiceRequest')).toEqual({
      resourceType: 'ServiceRequest',
      id: id('order', 'HIS202511060031'),
      meta: metaSource('HIS202511060031'),
      identifier: [placer('HIS202511060031')],
      status: 'active',
      intent: 'order',
      category: [{ coding: [{ system: V2_0074, code: 'RAD', display: 'Radiology' }] }, { coding: [{ system: V2_0074, code: 'CT' }] }],
      priority: 'routine',
      code: { coding: [loinc('29252-4', 'CT Chest WO contrast'), { system: RIS, code: 'CT0101', display: '胸部CT平扫' }], text: '胸部CT平扫' },
      subject: { reference: PATIENT_REF.chen },
      encounter: { reference: ref('Encounter', 'encounter', 'MZ202511060103') },
      authoredOn: '2025-11-06T09:30:00+08:00',
      requester: practitioner('D0789', '孙立新'),
      reasonCode: [
        { text: '咳嗽、咳痰两周' },
        { coding: [{ system: ICD10, code: 'J18.9', display: 'Pneumonia, unspecified' }, { system: DX, code: 'ZD004', display: '社区获得性肺炎' }], text: '社区获得性肺炎' },
      ],
      note: [{ text: '患者可平卧配合屏气' }],
    });
    const report = one<DiagnosticReport>(map('oru-r01-ct-chest-gb18030.hl7'), 'DiagnosticReport');
    expect(report.basedOn).toEqual([{ reference: `ServiceRequest/${id('order', 'HIS202511060031')}` }]);
  });

  it('OMG^O19: the CBC order, stat by TQ1-9, for hypertension; the CBC result is based on it', () => {
    const r = map('omg-o19-cbc-wang-xiaoming.hl7');
    const request = one<ServiceRequest>(r, 'ServiceRequest');
    expect(request.id).toBe(id('order', 'HIS202511030011'));
    expect(r.createOnly).not.toContain(fullUrl(request.id!));
    expect([request.status, request.intent, request.priority, request.authoredOn]).toEqual(['active', 'order', 'stat', '2025-11-03T08:35:00+08:00']);
    expect(request.code!.coding![0]).toEqual(loinc('58410-2', 'CBC panel - Blood by Automated count'));
    expect(request.reasonCode).toEqual([{ coding: [{ system: ICD10, code: 'I10', display: '原发性高血压' }], text: '原发性高血压' }]);
    expect(request.requester).toEqual(practitioner('D0123', '刘建华'));
    expect(one<DiagnosticReport>(map('oru-r01-cbc-gb18030.hl7'), 'DiagnosticReport').basedOn).toEqual([{ reference: `ServiceRequest/${request.id}` }]);
  });

  it('reads the order state from ORC-5, else ORC-1, and names a code it does not know', () => {
    const omg = text('omg-o19-cbc-wang-xiaoming.hl7');
    const status = (t: string): string => one<ServiceRequest>(mapText(t), 'ServiceRequest').status;
    expect(status(withField(omg, 'ORC', 1, 'CA'))).toBe('revoked');
    expect(status(withField(omg, 'ORC', 1, 'HD'))).toBe('on-hold');
    expect(status(withField(omg, 'ORC', 5, 'CM'))).toBe('completed');
    const e = thrown(() => mapText(withField(omg, 'ORC', 1, 'ZZ')));
    expect([e.where, e.code]).toEqual(['ORC-1', 'code-invalid']);
    const missing = thrown(() => mapText(withField(omg, 'ORC', 1, '')));
    expect([missing.where, missing.code]).toEqual(['ORC-1', 'required']);
  });
});

describe('RDE^O11 prescriptions', () => {
  const r = map('rde-o11-zhang-lijuan-diabetes.hl7');
  const [metformin, acarbose, nitroglycerin] = all<MedicationRequest>(r, 'MedicationRequest');
  const PRESCRIPTION = { use: 'official', type: { coding: [{ system: V2_0203, code: 'PGN' }] }, system: 'urn:consortium:source:city-hospital:placer-group', value: 'CF202511070021' };
  const DAYS_30 = { value: 30, unit: 'd', system: UCUM, code: 'd' };

  it('maps three lines of one prescription, a Medication per coded drug, the unmapped drug counted', () => {
    expect(types(r)).toEqual(['Patient', 'Encounter', 'Medication', 'MedicationRequest', 'Medication', 'MedicationRequest', 'MedicationRequest']);
    expect(r.createOnly).toEqual([fullUrl(id('patient', '10000104')), fullUrl(id('encounter', 'MZ202511070104'))]);
    expect(r.unmapped).toEqual([{ system: DRUG, code: 'YP017', display: '阿卡波糖片 50mg', kind: 'drug' }]);
    expect(r.warnings).toEqual([]);
    expect(all<Medication>(r, 'Medication')).toEqual([
      {
        resourceType: 'Medication',
        id: id('medication', '99YP|YP001'),
        meta: metaSource('HIS202511070052'),
        code: { coding: [{ system: 'http://www.whocc.no/atc', code: 'A10BA02', display: 'metformin' }, { system: DRUG, code: 'YP001', display: '盐酸二甲双胍片 0.5g' }], text: '盐酸二甲双胍片 0.5g' },
        form: { text: '片剂' },
      },
      {
        resourceType: 'Medication',
        id: id('medication', '99YP|YP017'),
        meta: metaSource('HIS202511070052'),
        code: { coding: [{ system: DRUG, code: 'YP017', display: '阿卡波糖片 50mg' }], text: '阿卡波糖片 50mg' },
        form: { text: '片剂' },
      },
    ]);
  });

  it('metformin: TQ1 timing, oral route, dose in g, dispense in tablets', () => {
    expect(metformin).toEqual({
      resourceType: 'MedicationRequest',
      id: id('medreq', 'CF202511070021-1'),
      meta: metaSource('HIS202511070052'),
      identifier: [placer('CF202511070021-1')],
      groupIdentifier: PRESCRIPTION,
      status: 'active',
      intent: 'order',
      medicationReference: { reference: ref('Medication', 'medication', '99YP|YP001'), display: '盐酸二甲双胍片 0.5g' },
      subject: { reference: PATIENT_REF.zhang },
      encounter: { reference: ref('Encounter', 'encounter', 'MZ202511070104') },
      authoredOn: '2025-11-07T10:05:00+08:00',
      requester: practitioner('D0321', '钱丽'),
      dosageInstruction: [
        {
          text: '餐后口服',
          timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd', boundsDuration: DAYS_30 }, code: { text: 'TID' } },
          route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0162', code: 'PO', display: 'Oral' }], text: '口服' },
          doseAndRate: [{ doseQuantity: { value: 0.5, unit: '克', system: UCUM, code: 'g' } }],
        },
      ],
      dispenseRequest: { numberOfRepeatsAllowed: 0, quantity: { value: 90, unit: '片', system: UCUM, code: '{tbl}' } },
    });
  });

  it('acarbose: timing from RXE-1 (TQ), the route from its words', () => {
    expect(acarbose.dosageInstruction![0].timing).toEqual({ repeat: { frequency: 3, period: 1, periodUnit: 'd', boundsDuration: DAYS_30 }, code: { text: 'TID' } });
    expect(acarbose.dosageInstruction![0].route!.coding![0].code).toBe('PO');
    expect(acarbose.dosageInstruction![0].doseAndRate).toEqual([{ doseQuantity: { value: 50, unit: 'mg', system: UCUM, code: 'mg' } }]);
    expect(acarbose.medicationReference!.reference).toBe(ref('Medication', 'medication', '99YP|YP017'));
  });

  it('nitroglycerin: named only, as needed, sublingual, with the prescriber note', () => {
    expect(nitroglycerin.medicationCodeableConcept).toEqual({ text: '硝酸甘油片 0.5mg' });
    expect(nitroglycerin.medicationReference).toBeUndefined();
    expect(nitroglycerin.dosageInstruction).toEqual([
      {
        timing: { code: { text: 'PRN' } },
        asNeededBoolean: true,
        route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0162', code: 'SL', display: 'Sublingual' }], text: '舌下含服' },
        doseAndRate: [{ doseQuantity: { value: 0.5, unit: 'mg', system: UCUM, code: 'mg' } }],
      },
    ]);
    expect(nitroglycerin.note).toEqual([{ text: '胸痛发作时舌下含服，5 分钟不缓解可重复一次，仍不缓解立即就诊' }]);
    expect(nitroglycerin.dispenseRequest).toEqual({ quantity: { value: 10, unit: '片', system: UCUM, code: '{tbl}' } });
  });

  it('reads Qn H frequencies, warns on unknown ones, names a bad dose', () => {
    const rde = text('rde-o11-zhang-lijuan-diabetes.hl7');
    const q8h = all<MedicationRequest>(mapText(rde.replace('TQ1|1||TID|', 'TQ1|1||Q8H|')), 'MedicationRequest')[0];
    expect(q8h.dosageInstruction![0].timing!.repeat).toEqual({ frequency: 1, period: 8, periodUnit: 'h', boundsDuration: DAYS_30 });
    const odd = mapText(rde.replace('TQ1|1||TID|', 'TQ1|1||每日三次|'));
    expect(all<MedicationRequest>(odd, 'MedicationRequest')[0].dosageInstruction![0].timing).toEqual({ repeat: { boundsDuration: DAYS_30 }, code: { text: '每日三次' } });
    expect(odd.warnings).toEqual(["TQ1-3: frequency '每日三次' is not one this gateway knows; kept as text"]);
    const dose = thrown(() => mapText(rde.replace('99YP|0.5||g^克^UCUM', '99YP|半片||g^克^UCUM')));
    expect([dose.where, dose.code]).toEqual(['RXE-3', 'value']);
  });
});

describe('message-level rules', () => {
  it('rejects a version other than 2.x at MSH-12', () => {
    const e = thrown(() => mapText(withField(text('adt-a04-wang-xiaoming.hl7'), 'MSH', 12, '3.0')));
    expect([e.where, e.code, ackCodeFor(e)]).toEqual(['MSH-12', 'not-supported', 'AR']);
  });

  it('accepts every sendingFacility of the source (YXSDYRMYY as well as CITYHOSP)', () => {
    const r = mapText(withField(text('adt-a04-wang-xiaoming.hl7'), 'MSH', 4, 'YXSDYRMYY'));
    expect(one<Patient>(r, 'Patient').id).toBe(id('patient', '10000101'));
  });

  it('maps the same message alike whatever its segment separators', () => {
    const t = text('oru-r01-chemistry-zhang-lijuan.hl7');
    const expected = mapText(t);
    expect(mapText(t.replace(/\r/g, '\n'))).toEqual(expected);
    expect(mapText(t.replace(/\r/g, '\r\n'))).toEqual(expected);
  });

  it('refuses a second patient in one message, naming it', () => {
    const t = text('oru-r01-chemistry-zhang-lijuan.hl7');
    const pid = t.split('\r').find((l) => l.startsWith('PID|'))!;
    const e = thrown(() => mapText(`${t}\r${pid}`));
    expect([e.where, e.code]).toEqual(['PID[2]', 'not-supported']);
  });
});

describe('broken city-hospital messages', () => {
  const expected = JSON.parse(readFileSync(join(BROKEN, 'expected.json'), 'utf8')) as Record<string, { location: string; ack: 'AR' | 'AE'; code: string }>;

  it('lists every broken file in expected.json', () => {
    expect(Object.keys(expected).sort()).toEqual(readdirSync(BROKEN).filter((f) => f.endsWith('.hl7')).sort());
  });

  it.each(Object.entries(expected))('%s fails at %j', (name, want) => {
    const e = thrown(() => mapHl7v2(decodeEr7(readFileSync(join(BROKEN, name))).text, ctx));
    expect({ location: e.where, ack: ackCodeFor(e), code: e.code }).toEqual(want);
  });
});
