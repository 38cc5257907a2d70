import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConceptMap, Encounter, Medication, MedicationRequest, Observation, Patient, Resource } from '@medplum/fhirtypes';
import * as community from '../../mappers/community-csv';
import { Terminology, type MapContext, type SourceConfig } from '../../mappers/context';
import { resourceId } from '../../mappers/ids';
import { MappingError, type MapResult } from '../../mappers/types';
import { markLine, readCsv } from '../../mappers/community-csv/csv';
import { validateMappedBundle } from '../../profiles/conformance';
import { thrown } from '../support/thrown';

const ROOT = resolve(__dirname, '../..');
const FIXTURES = join(ROOT, 'fixtures/messages/community-centre-a');
const BROKEN = join(ROOT, 'fixtures/messages/broken/community-centre-a');
const FACILITY = 'community-centre-a';

/** The context the source registry builds: the source's config and its own ConceptMaps. */
function communityContext(): MapContext {
  const sources = JSON.parse(readFileSync(join(ROOT, 'fixtures/demo-sources.json'), 'utf8')) as SourceConfig[];
  const dir = join(ROOT, 'mappers/terminology');
  const maps = readdirSync(dir)
    .filter((f) => f.startsWith(`${FACILITY}-`))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ConceptMap);
  return { source: sources.find((s) => s.id === FACILITY)!, terminology: new Terminology(maps) };
}
const ctx = communityContext();

const id = (kind: string, local: string): string => resourceId(FACILITY, kind, local);
const ref = (type: string, kind: string, local: string): { reference: string } => ({ reference: `${type}/${id(kind, local)}` });
const meta = (record: string): { source: string } => ({ source: `urn:consortium:source:community-centre-a#${record}` });
const ORG = { reference: 'Organization/community-centre-a' };

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
const DRUG = 'http://example.org/fhir/CodeSystem/community-centre-a-drug';
const DISEASE = 'urn:consortium:source:community-centre-a:diagnosis';
const MRN_SYSTEM = 'urn:oid:2.16.156.10011.1.11.3';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const MRN_TYPE = { coding: [{ system: V2_0203, code: 'MR', display: 'Medical record number' }], text: '病案号' };
const category = (code: string) => [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code }] }];
const loinc = (code: string, display: string, text: string) => ({ coding: [{ system: LOINC, code, display }], text });
const ucum = (value: number, code: string, unit = code) => ({ value, unit, system: UCUM, code });

const read = (file: string): string => readFileSync(join(FIXTURES, file), 'utf8');
const mapFile = (file: string): MapResult[] => community.split(read(file)).map((r) => community.map(r.raw, ctx));
const mapCsv = (csv: string): MapResult[] => community.split(csv).map((r) => community.map(r.raw, ctx));
const resources = (r: MapResult): Resource[] => r.bundle.entry!.map((e) => e.resource!);
const all = <T extends Resource>(r: MapResult, type: T['resourceType']): T[] => resources(r).filter((x) => x.resourceType === type) as T[];
const one = <T extends Resource>(r: MapResult, type: T['resourceType']): T => {
  const found = all<T>(r, type);
  expect(found).toHaveLength(1);
  return found[0];
};
/** Observations by their LOINC code. */
const observations = (r: MapResult): Record<string, Observation> => Object.fromEntries(all<Observation>(r, 'Observation').map((o) => [o.code.coding![0].code, o]));

const FIXTURE_FILES = readdirSync(FIXTURES).filter((f) => f.endsWith('.csv')).sort();
const FOLLOW_UP_HEADER = 'sfjlh,jmbh,xm,xb,sfrq,ssy,szy';

describe('community CSV: split', () => {
  it('gives one record per data row, with its number and the line it starts on', () => {
    const summary = Object.fromEntries(FIXTURE_FILES.map((f) => [f, community.split(read(f)).map((r) => [r.kind, r.localId, r.line])]));
    expect(summary).toEqual({
      // BOM, CRLF, quoted fields, a blank line (3) and a trailing row of bare commas.
      'followups-diabetes.csv': [['followup', 'SF202511002', 2], ['followup', 'SF202511004', 4]],
      'followups-hypertension.csv': [['followup', 'SF202511001', 2], ['followup', 'SF202511003', 3]],
      'lab-results.csv': [['lab', 'JY2025110001', 2], ['lab', 'JY2025110002', 3], ['lab', 'JY2025110003', 4], ['lab', 'JY2025110004', 5]],
      'prescriptions.csv': [['prescription', 'SQCF2025110001', 2], ['prescription', 'SQCF2025110002', 3], ['prescription', 'SQCF2025110002', 4]],
    });
  });

  it('keeps a row as the header line and that row, marked with the row’s line', () => {
    const lines = read('followups-hypertension.csv').split('\n');
    expect(community.split(read('followups-hypertension.csv')).map((r) => r.raw)).toEqual([`#line 2\n${lines[0]}\n${lines[1]}`, `#line 3\n${lines[0]}\n${lines[2]}`]);
  });

  it('keeps a quoted field’s line break inside its row, and names the row by the line it starts on', () => {
    const records = community.split(`${FOLLOW_UP_HEADER}\nSF1,C1,"王\n伟",1,2025-11-10,140,90\nSF2,C2,李娜,2,2025-11-10,,\n`);
    expect(records.map((r) => [r.localId, r.line])).toEqual([['SF1', 2], ['SF2', 4]]);
    expect(one<Patient>(community.map(records[0].raw, ctx), 'Patient').name).toEqual([{ use: 'official', text: '王\n伟' }]);
    expect(thrown(() => community.map(records[1].raw.replace('2025-11-10', 'x'), ctx)).where).toBe('line 4, column sfrq');
  });

  it('reads a split record without quotes as csv-parse reads it: blanks (the ideographic one too) trimmed, empty cells kept', () => {
    const text = 'jyjgh, jmbh ,xm,jg,dw\nJY1 ,\tC1,\u3000王伟, 5.1,\n';
    // Marked: the plain path; unmarked: csv-parse (the row's line then counts from the body).
    const plain = readCsv(markLine(2, text));
    const parsed = readCsv(text);
    expect([plain.header, plain.rows[0].fields, plain.rows[0].line]).toEqual([parsed.header, parsed.rows[0].fields, parsed.rows[0].line]);
    expect(plain.rows[0].fields).toEqual(['JY1', 'C1', '王伟', '5.1', '']);
    // The row as the sender wrote it (csv-parse's raw text garbles a trimmed multi-byte blank).
    expect(plain.rows[0].text).toBe('JY1 ,\tC1,\u3000王伟, 5.1,');
    expect(readCsv(markLine(9, 'a,b\n,\n')).rows).toEqual([]);
  });

  it('reads column names in any case', () => {
    expect(community.split('SFJLH,JMBH,XM,XB,SFRQ\nSF1,C1,王伟,1,2025-11-10\n').map((r) => r.kind)).toEqual(['followup']);
  });

  it.each([
    ['a header only', `${FOLLOW_UP_HEADER}\n`, 'line 2', 'required'],
    ['an empty body', '', 'line 1', 'required'],
    ['both kinds of number column', 'sfjlh,cfh\n1,2\n', 'line 1', 'structure'],
    ['a column named twice', 'sfjlh,jmbh,xm,xb,sfrq,xm\n1,2,3,1,2025-11-10,4\n', 'line 1, column xm', 'structure'],
    ['a quote inside an unquoted field', `${FOLLOW_UP_HEADER}\nSF1,C1,王"伟,1,2025-11-10,140,90\n`, 'line 2', 'structure'],
    ['text after a closing quote', `${FOLLOW_UP_HEADER}\nSF1,C1,"王伟"x,1,2025-11-10,140,90\n`, 'line 2', 'structure'],
  ])('refuses %s', (_, body, where, code) => {
    const e = thrown(() => community.split(body));
    expect([e.where, e.code]).toEqual([where, code]);
  });

  it('does not quote the data in a syntax error', () => {
    expect(thrown(() => community.split(`${FOLLOW_UP_HEADER}\nSF1,C1,"王伟,1,2025-11-10,140,90\n`)).message).toBe('a quoted field is never closed (an unbalanced quote)');
  });
});

describe('community CSV: every demo record', () => {
  const results = FIXTURE_FILES.flatMap((f) => community.split(read(f)).map((r) => ({ file: f, record: r, result: community.map(r.raw, ctx) })));

  it.each(results.map((x) => [`${x.file} line ${x.record.line}`, x] as const))('%s is a transaction of PUTs to deterministic ids, all from its row', (_, { record, result }) => {
    expect(result.bundle.type).toBe('transaction');
    for (const e of result.bundle.entry!) {
      const r = e.resource!;
      expect(e.fullUrl).toBe(`urn:uuid:${r.id}`);
      expect(e.request).toEqual({ method: 'PUT', url: `${r.resourceType}/${r.id}` });
      expect(r.meta).toEqual(meta(record.localId!));
    }
    expect(new Set(result.bundle.entry!.map((e) => e.fullUrl)).size).toBe(result.bundle.entry!.length);
    const patient = one<Patient>(result, 'Patient');
    const subjects = resources(result).flatMap((r) => ('subject' in r && r.subject ? [(r.subject as { reference: string }).reference] : []));
    expect(new Set(subjects)).toEqual(new Set([`Patient/${patient.id}`]));
    // The centre registers its residents: a follow-up writes the Patient, a prescription or a lab result only a copy.
    expect(result.createOnly).toEqual(record.kind === 'followup' ? [] : [`urn:uuid:${patient.id}`]);
    expect(() => validateMappedBundle(result.bundle, result.createOnly)).not.toThrow();
  });

  it.each(results.map((x) => [`${x.file} line ${x.record.line}`, x] as const))('%s maps to the same bundle twice', (_, { record, result }) => {
    expect(JSON.stringify(community.map(record.raw, ctx))).toBe(JSON.stringify(result));
  });
});

describe('community CSV: follow-ups', () => {
  const [wang, zhang] = mapFile('followups-hypertension.csv');
  const [li, zhao] = mapFile('followups-diabetes.csv');

  it('writes 王小明 registration at the centre: MRN, ID number, sex, birth date, phone', () => {
    expect(one<Patient>(wang, 'Patient')).toEqual({
      resourceType: 'Patient',
      id: id('patient', 'C0000301'),
      meta: meta('SF202511001'),
      identifier: [
        { use: 'usual', type: MRN_TYPE, system: MRN_SYSTEM, value: 'C0000301' },
        {
          use: 'official',
          type: { coding: [{ system: V2_0203, code: 'NI', display: 'National unique individual identifier' }], text: '居民身份证' },
          system: 'urn:oid:2.16.156.10011.1.3',
          value: '339901195803120317',
        },
      ],
      name: [{ use: 'official', text: '王小明' }],
      telecom: [{ system: 'phone', value: '17000000101', use: 'mobile' }],
      gender: 'male',
      birthDate: '1958-03-12',
      managingOrganization: ORG,
    } satisfies Patient);
    expect([wang.createOnly, wang.warnings, wang.unmapped]).toEqual([[], [], []]);
  });

  it('maps the visit as a finished ambulatory follow-up for the disease under management', () => {
    expect(one<Encounter>(wang, 'Encounter')).toEqual({
      resourceType: 'Encounter',
      id: id('encounter', 'SF202511001'),
      meta: meta('SF202511001'),
      identifier: [{ use: 'usual', system: 'urn:consortium:source:community-centre-a:followup', value: 'SF202511001' }],
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
      type: [{ coding: [{ system: 'http://snomed.info/sct', code: '390906007', display: 'Follow-up encounter' }], text: '高血压随访' }],
      subject: ref('Patient', 'patient', 'C0000301'),
      participant: [{ type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND', display: 'attender' }] }], individual: { display: '孙丽' } }],
      period: { start: '2025-11-10' },
      reasonCode: [{ coding: [{ system: ICD10, code: 'I10', display: 'Essential (primary) hypertension' }, { system: DISEASE, code: '高血压', display: '高血压' }], text: '高血压' }],
      serviceProvider: ORG,
    } satisfies Encounter);
  });

  it('maps blood pressure as one panel of systolic and diastolic, in mm[Hg]', () => {
    expect(observations(wang)['85354-9']).toEqual({
      resourceType: 'Observation',
      id: id('observation', 'SF202511001|85354-9'),
      meta: meta('SF202511001'),
      status: 'final',
      category: category('vital-signs'),
      code: loinc('85354-9', 'Blood pressure panel with all children optional', '血压'),
      subject: ref('Patient', 'patient', 'C0000301'),
      encounter: ref('Encounter', 'encounter', 'SF202511001'),
      effectiveDateTime: '2025-11-10',
      performer: [ORG],
      component: [
        { code: loinc('8480-6', 'Systolic blood pressure', '收缩压'), valueQuantity: ucum(148, 'mm[Hg]') },
        { code: loinc('8462-4', 'Diastolic blood pressure', '舒张压'), valueQuantity: ucum(92, 'mm[Hg]') },
      ],
    } satisfies Observation);
  });

  it('maps weight and height as vital signs; an empty glucose cell makes no Observation', () => {
    const o = observations(wang);
    expect(Object.keys(o)).toEqual(['85354-9', '29463-7', '8302-2']);
    expect([o['29463-7'].id, o['29463-7'].category, o['29463-7'].code, o['29463-7'].valueQuantity]).toEqual([
      id('observation', 'SF202511001|29463-7'),
      category('vital-signs'),
      loinc('29463-7', 'Body weight', '体重'),
      ucum(71.5, 'kg'),
    ]);
    expect([o['8302-2'].code, o['8302-2'].valueQuantity]).toEqual([loinc('8302-2', 'Body height', '身高'), ucum(168, 'cm')]);
  });

  it('keeps 张丽娟 day-first birth date as registered, saying it disagrees with her ID number', () => {
    expect(one<Patient>(zhang, 'Patient').birthDate).toBe('1985-01-02');
    expect(zhang.warnings).toEqual(['line 3, column csrq: birth date differs from the one the resident ID number encodes']);
  });

  it('maps 李秀英, registered without an ID number: fasting glucose in mmol/L as a laboratory result', () => {
    expect(one<Patient>(li, 'Patient').identifier).toEqual([{ use: 'usual', type: MRN_TYPE, system: MRN_SYSTEM, value: 'C0000302' }]);
    const o = observations(li);
    expect(Object.keys(o)).toEqual(['85354-9', '14771-0', '29463-7']);
    expect([o['14771-0'].id, o['14771-0'].category, o['14771-0'].code, o['14771-0'].valueQuantity, o['14771-0'].effectiveDateTime]).toEqual([
      id('observation', 'SF202511002|14771-0'),
      category('laboratory'),
      loinc('14771-0', 'Fasting glucose [Moles/volume] in Serum or Plasma', '空腹血糖'),
      ucum(7.9, 'mmol/L'),
      '2025-11-10',
    ]);
    expect(o['29463-7'].valueQuantity).toEqual(ucum(63, 'kg'));
    expect(one<Encounter>(li, 'Encounter').reasonCode![0].coding![0]).toEqual({ system: ICD10, code: 'E11', display: 'Type 2 diabetes mellitus' });
  });

  it('maps 赵伟 quoted row with empty blood pressure cells: no panel', () => {
    expect(Object.keys(observations(zhao))).toEqual(['14771-0', '29463-7']);
    expect(one<Patient>(zhao, 'Patient')).toMatchObject({ id: id('patient', 'C0000305'), name: [{ use: 'official', text: '赵伟' }], gender: 'male', birthDate: '1990-06-18' });
    expect(one<Encounter>(zhao, 'Encounter').type![0].text).toBe('糖尿病随访');
  });

  it('keeps a reading with one pressure only, reads full-width digits and 男/女, names an unlisted disease as unmapped', () => {
    const [r] = mapCsv('sfjlh,jmbh,xm,xb,sfrq,ssy,szy,jblx\nSF9,C9,王伟,男,2025-11-10,１５０,,慢阻肺\n');
    expect(observations(r)['85354-9'].component).toEqual([{ code: loinc('8480-6', 'Systolic blood pressure', '收缩压'), valueQuantity: ucum(150, 'mm[Hg]') }]);
    expect(one<Patient>(r, 'Patient').gender).toBe('male');
    expect(r.unmapped).toEqual([{ system: DISEASE, code: '慢阻肺', display: '慢阻肺', kind: 'diagnosis' }]);
  });

  it('calls a follow-up without a disease a chronic-disease follow-up', () => {
    const [r] = mapCsv(`${FOLLOW_UP_HEADER}\nSF9,C9,王伟,1,2025-11-10,,\n`);
    const e = one<Encounter>(r, 'Encounter');
    expect([e.type![0].text, e.reasonCode, e.participant, all(r, 'Observation')]).toEqual(['慢病随访', undefined, undefined, []]);
  });
});

describe('community CSV: lab results', () => {
  const [glucose, hba1c, cholesterol, urine] = mapFile('lab-results.csv');
  const V3 = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
  const LIS = 'http://example.org/fhir/CodeSystem/community-centre-a-lis';

  it('maps a row to one laboratory Observation, LOINC beside the local code, for a create-only copy of the resident', () => {
    expect(one<Observation>(glucose, 'Observation')).toEqual({
      resourceType: 'Observation',
      id: id('observation', 'JY2025110001'),
      meta: meta('JY2025110001'),
      identifier: [
        { use: 'official', system: 'urn:consortium:source:community-centre-a:lab-result', value: 'JY2025110001' },
        { use: 'secondary', system: 'urn:consortium:source:community-centre-a:report', value: 'BG20251101' },
      ],
      status: 'final',
      category: category('laboratory'),
      code: { coding: [{ system: LOINC, code: '14771-0', display: 'Glucose [Moles/volume] in Serum or Plasma --fasting' }, { system: LIS, code: 'GLU', display: '空腹血糖' }], text: '空腹血糖' },
      subject: ref('Patient', 'patient', 'C0000302'),
      effectiveDateTime: '2025-11-10T07:40:00+08:00',
      issued: '2025-11-10T02:05:00.000Z',
      performer: [ORG],
      valueQuantity: ucum(7.9, 'mmol/L'),
      interpretation: [{ coding: [{ system: V3, code: 'H', display: 'High' }] }],
      referenceRange: [{ low: ucum(3.9, 'mmol/L'), high: ucum(6.1, 'mmol/L'), text: '3.9-6.1' }],
    } satisfies Observation);
    expect(glucose.createOnly).toEqual([`urn:uuid:${id('patient', 'C0000302')}`]);
    expect(one<Patient>(glucose, 'Patient')).toMatchObject({ gender: 'female', birthDate: '1962-07-25', name: [{ use: 'official', text: '李秀英' }] });
    expect(glucose.unmapped).toEqual([]);
  });

  it('reads the flags Chinese LIS print (↑), an upper bound as a range, and keeps a text result and an unmapped code', () => {
    expect(one<Observation>(hba1c, 'Observation').interpretation).toEqual([{ coding: [{ system: V3, code: 'H', display: 'High' }] }]);
    expect(one<Observation>(cholesterol, 'Observation').referenceRange).toEqual([{ high: ucum(5.2, 'mmol/L'), text: '<5.2' }]);
    const text = one<Observation>(urine, 'Observation');
    expect(text.valueString).toBe('阴性');
    expect(text.code.coding).toEqual([{ system: LIS, code: 'XY99', display: '尿常规（外送）' }]);
    expect(urine.unmapped).toEqual([{ system: LIS, code: 'XY99', display: '尿常规（外送）', kind: 'lab' }]);
  });

  it('names the line and column of a result it cannot read', () => {
    const header = 'jyjgh,jmbh,cjsj,xmdm,jg,ycbz';
    expect(thrown(() => mapCsv(`${header}\nJY1,C1,2025-11-10 07:40:00,GLU,,H\n`)).where).toBe('line 2, column jg');
    expect(thrown(() => mapCsv(`${header}\nJY1,C1,11/10/2025,GLU,5.1,\n`)).where).toBe('line 2, column cjsj');
    const [unknownFlag] = mapCsv(`${header}\nJY1,C1,2025-11-10 07:40:00,GLU,5.1,偏高\n`);
    expect(unknownFlag.warnings).toEqual(["line 2, column ycbz: flag '偏高' is not an abnormal flag this gateway knows; left out"]);
  });
});

describe('community CSV: prescriptions', () => {
  const [wang, liMetformin, liAcarbose] = mapFile('prescriptions.csv');

  it('maps a row to a MedicationRequest for a create-only copy of the resident', () => {
    expect(one<MedicationRequest>(wang, 'MedicationRequest')).toEqual({
      resourceType: 'MedicationRequest',
      id: id('medreq', 'SQCF2025110001|SQ001'),
      meta: meta('SQCF2025110001'),
      groupIdentifier: { system: 'urn:consortium:source:community-centre-a:prescription', value: 'SQCF2025110001' },
      status: 'active',
      intent: 'order',
      medicationReference: { reference: `Medication/${id('medication', 'SQ001')}`, display: '硝苯地平控释片' },
      subject: ref('Patient', 'patient', 'C0000301'),
      authoredOn: '2025-11-10',
      requester: { display: '孙丽' },
      dosageInstruction: [
        {
          text: '30mg qd 口服',
          timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' }, code: { text: 'qd' } },
          route: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0162', code: 'PO', display: 'Oral' }], text: '口服' },
          doseAndRate: [{ doseQuantity: ucum(30, 'mg') }],
        },
      ],
      dispenseRequest: { quantity: ucum(30, '{tbl}', '片'), expectedSupplyDuration: ucum(30, 'd') },
    } satisfies MedicationRequest);
    expect(one<Patient>(wang, 'Patient')).toEqual({
      resourceType: 'Patient',
      id: id('patient', 'C0000301'),
      meta: meta('SQCF2025110001'),
      identifier: [{ use: 'usual', type: MRN_TYPE, system: MRN_SYSTEM, value: 'C0000301' }],
      name: [{ use: 'official', text: '王小明' }],
      managingOrganization: ORG,
    } satisfies Patient);
    expect(one<Medication>(wang, 'Medication')).toEqual({
      resourceType: 'Medication',
      id: id('medication', 'SQ001'),
      meta: meta('SQCF2025110001'),
      code: { coding: [{ system: 'http://www.whocc.no/atc', code: 'C08CA05', display: 'nifedipine' }, { system: DRUG, code: 'SQ001', display: '硝苯地平控释片' }], text: '硝苯地平控释片' },
    } satisfies Medication);
  });

  it('keeps two lines of one prescription apart, grouped by its number', () => {
    const [a, b] = [liMetformin, liAcarbose].map((r) => one<MedicationRequest>(r, 'MedicationRequest'));
    expect([a.id, b.id]).toEqual([id('medreq', 'SQCF2025110002|SQ002'), id('medreq', 'SQCF2025110002|SQ003')]);
    expect(a.groupIdentifier).toEqual(b.groupIdentifier);
    expect([a.dosageInstruction![0].text, a.dosageInstruction![0].timing!.repeat, a.dosageInstruction![0].doseAndRate]).toEqual([
      '0.5g tid 口服',
      { frequency: 3, period: 1, periodUnit: 'd' },
      [{ doseQuantity: ucum(0.5, 'g') }],
    ]);
    expect([liMetformin.unmapped, liAcarbose.unmapped]).toEqual([[], [{ system: DRUG, code: 'SQ003', display: '阿卡波糖片', kind: 'drug' }]]);
  });

  const PRESCRIPTION_HEADER = 'cfh,jmbh,kfrq,ypdm,ypmc,jl,jldw,pc,ts,sl';

  it('reads a prescription time, a quantity without unit, and warns of an unknown frequency', () => {
    const [r] = mapCsv(`${PRESCRIPTION_HEADER}\nCF9,C9,2025-11-10 08:15:00,SQ001,硝苯地平控释片,30,mg,每日一次,7,7\n`);
    const mr = one<MedicationRequest>(r, 'MedicationRequest');
    expect([mr.authoredOn, mr.dispenseRequest, mr.dosageInstruction![0].timing, mr.requester]).toEqual([
      '2025-11-10T08:15:00+08:00',
      { quantity: { value: 7 }, expectedSupplyDuration: ucum(7, 'd') },
      { code: { text: '每日一次' } },
      undefined,
    ]);
    expect(r.warnings).toEqual(["line 2, column pc: frequency '每日一次' is not one this gateway knows; kept as text"]);
    expect(one<Patient>(r, 'Patient').name).toBeUndefined();
  });

  it.each([
    ['a negative dose', 'CF9,C9,2025-11-10,SQ001,x,-5,mg,qd,7,7', 'line 2, column jl', 'value'],
    ['part of a day', 'CF9,C9,2025-11-10,SQ001,x,5,mg,qd,7.5,7', 'line 2, column ts', 'value'],
    ['a line with no dose, frequency or route', 'CF9,C9,2025-11-10,SQ001,x,,,,7,7', 'line 2, column jl', 'required'],
    ['an empty drug code', 'CF9,C9,2025-11-10,,x,5,mg,qd,7,7', 'line 2, column ypdm', 'required'],
    ['an empty prescription number', ',C9,2025-11-10,SQ001,x,5,mg,qd,7,7', 'line 2, column cfh', 'required'],
  ])('refuses %s', (_, row, where, code) => {
    const [record] = community.split(`${PRESCRIPTION_HEADER}\n${row}\n`);
    const e = thrown(() => community.map(record.raw, ctx));
    expect([e.where, e.code]).toEqual([where, code]);
  });
});

describe('community CSV: one record at a time', () => {
  it('names line 2 when a row is mapped without a line mark', () => {
    expect(thrown(() => community.map(`${FOLLOW_UP_HEADER}\nSF1,C1,王伟,1,2025-11-10,x,90`, ctx)).where).toBe('line 2, column ssy');
  });

  it('refuses more than one row', () => {
    const e = thrown(() => community.map(`${FOLLOW_UP_HEADER}\nSF1,C1,王伟,1,2025-11-10,,\nSF2,C2,王伟,1,2025-11-10,,`, ctx));
    expect([e.where, e.code]).toEqual(['line 2', 'structure']);
  });

  it.each([
    ['a sex that is no GB/T 2261.1 code', 'SF1,C1,王伟,M,2025-11-10,,', 'line 2, column xb', 'code-invalid'],
    ['a follow-up date that is not a date', 'SF1,C1,王伟,1,2025-11-10 08:00:00,,', 'line 2, column sfrq', 'value'],
    ['a number with letters', 'SF1,C1,王伟,1,2025-11-10,140,9O', 'line 2, column szy', 'value'],
  ])('refuses %s', (_, row, where, code) => {
    const e = thrown(() => community.map(`${FOLLOW_UP_HEADER}\n${row}`, ctx));
    expect([e.where, e.code]).toEqual([where, code]);
  });
});

describe('community CSV: broken demo files fail naming where', () => {
  const expected = JSON.parse(readFileSync(join(BROKEN, 'expected.json'), 'utf8')) as Record<string, { stage: 'split' | 'map'; location: string; record?: number }>;

  it('has an expectation for every broken file', () => {
    expect(readdirSync(BROKEN).filter((f) => f !== 'expected.json').sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.entries(expected))('%s', (file, want) => {
    const body = readFileSync(join(BROKEN, file), 'utf8');
    if (want.stage === 'split') {
      expect(thrown(() => community.split(body)).where).toBe(want.location);
    } else {
      const records = community.split(body);
      const e = thrown(() => community.map(records[want.record ?? 0].raw, ctx));
      expect(e).toBeInstanceOf(MappingError);
      expect(e.where).toBe(want.location);
    }
  });
});
