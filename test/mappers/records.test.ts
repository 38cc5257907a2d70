import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Condition, DiagnosticReport, Encounter, ImagingStudy, MedicationRequest, Observation, Patient, Resource } from '@medplum/fhirtypes';
import * as communityCsv from '../../mappers/community-csv';
import * as countyJson from '../../mappers/county-json';
import { resourceId } from '../../mappers/ids';
import { MappingError, type MapResult } from '../../mappers/types';
import { validateMappedBundle } from '../../profiles/conformance';
import { demoSources } from '../support/ingest';

const FIXTURES = resolve(__dirname, '../../fixtures/messages');
const county = demoSources().get('county-hospital')!;
const community = demoSources().get('community-centre-a')!;
const read = (...p: string[]): string => readFileSync(join(FIXTURES, ...p), 'utf8');

function mapAll(mapper: typeof countyJson, ctx: typeof county, body: string): MapResult[] {
  return mapper.split(body).map((r) => mapper.map(r.raw, ctx));
}
const resources = (r: MapResult): Resource[] => r.bundle.entry!.map((e) => e.resource!);
const ofType = <T extends Resource>(r: MapResult, type: T['resourceType']): T[] => resources(r).filter((x) => x.resourceType === type) as T[];

describe('county hospital vendor JSON', () => {
  it('maps patient registrations, flagging the mistyped ID number instead of trusting it', () => {
    const results = mapAll(countyJson, county, read('county-hospital', 'br-patients.json'));
    expect(results).toHaveLength(4);
    const [wang, li, chen] = results.map((r) => ofType<Patient>(r, 'Patient')[0]);
    expect(wang.id).toBe(resourceId('county-hospital', 'patient', 'Z0000201'));
    expect(wang.name).toEqual([{ use: 'official', text: '王晓明' }]);
    expect(wang.gender).toBe('male');
    expect(wang.birthDate).toBe('1958-03-12');
    expect(wang.identifier!.map((i) => [i.system, i.value, i.use])).toEqual([
      ['urn:oid:2.16.156.10011.1.11.2', 'Z0000201', 'usual'],
      ['urn:oid:2.16.156.10011.1.3', '339901195803120317', 'official'],
    ]);
    expect(wang.meta!.source).toBe('urn:consortium:source:county-hospital#Z0000201');
    expect(li.identifier!.find((i) => i.system === 'urn:oid:2.16.156.10011.1.15')?.value).toBe('YB33992100012');
    expect(chen.identifier!.find((i) => i.system === 'urn:oid:2.16.156.10011.1.3')?.use).toBe('temp');
    expect(results[2].warnings).toEqual(['$.sfzh: resident ID number fails its check (check character does not match); stored as unverified']);
    expect(results.every((r) => r.createOnly.length === 0)).toBe(true);
  });

  it('maps a visit with diagnoses: ICD-10 beside the local code, unmapped ones counted', () => {
    const [r] = mapAll(countyJson, county, read('county-hospital', 'jz-visit-hypertension.json'));
    const enc = ofType<Encounter>(r, 'Encounter')[0];
    expect(enc.class.code).toBe('AMB');
    expect(enc.period).toEqual({ start: '2025-11-05T09:12:30+08:00' });
    const [main, other] = ofType<Condition>(r, 'Condition');
    expect(main.code!.coding!.map((c) => c.code)).toEqual(['I10', 'ZD001']);
    expect(main.encounter!.reference).toBe(`Encounter/${enc.id}`);
    expect(other.code!.coding!.map((c) => c.code)).toEqual(['ZD099']);
    expect(r.unmapped).toEqual([{ system: 'http://example.org/fhir/CodeSystem/county-hospital-dx', code: 'ZD099', display: '高脂血症', kind: 'diagnosis' }]);
    // The visit carries only the MRN: a create-only copy of the patient.
    expect(r.createOnly).toEqual([`urn:uuid:${resourceId('county-hospital', 'patient', 'Z0000201')}`]);
  });

  it('maps a lab report: UCUM quantities, ranges, arrow flags, text results, LOINC beside local codes', () => {
    const [r] = mapAll(countyJson, county, read('county-hospital', 'jy-lab-diabetes.json'));
    const report = ofType<DiagnosticReport>(r, 'DiagnosticReport')[0];
    const obs = ofType<Observation>(r, 'Observation');
    expect(report.result!.map((x) => x.reference)).toEqual(obs.map((o) => `Observation/${o.id}`));
    expect(obs[0].valueQuantity).toEqual({ value: 8.6, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' });
    expect(obs[0].code.coding!.map((c) => c.code)).toEqual(['14771-0', '0201']);
    expect(obs[0].interpretation![0].coding![0].code).toBe('H');
    expect(obs[0].referenceRange![0]).toMatchObject({ low: { value: 3.9 }, high: { value: 6.1 } });
    expect(obs[0].effectiveDateTime).toBe('2025-11-05T08:05:00+08:00');
    expect(obs[2].referenceRange![0]).toMatchObject({ high: { value: 5.2 }, text: '<5.2' });
    expect(obs[3].valueString).toBe('阴性');
    expect(r.unmapped.map((u) => u.code)).toEqual(['0299']);
    expect(() => validateMappedBundle(r.bundle, r.createOnly)).not.toThrow();
  });

  it('maps exam reports: conclusion, the report text as an attachment, the study UID', () => {
    const [ct] = mapAll(countyJson, county, read('county-hospital', 'jc-ct-chest.json'));
    const report = ofType<DiagnosticReport>(ct, 'DiagnosticReport')[0];
    const study = ofType<ImagingStudy>(ct, 'ImagingStudy')[0];
    expect(report.conclusion).toBe('右肺下叶炎症，建议抗感染治疗后复查。');
    expect(Buffer.from(report.presentedForm![0].data!, 'base64').toString('utf8')).toContain('【检查所见】\n右肺下叶见斑片状高密度影');
    expect(study.identifier).toEqual([{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.156.112605.14038.20251106142000.3' }]);
    expect(report.imagingStudy).toEqual([{ reference: `ImagingStudy/${study.id}` }]);
    expect(report.code.coding![0].code).toBe('30745-4');
    const [ecg] = mapAll(countyJson, county, read('county-hospital', 'jc-ecg.json'));
    expect(ofType<DiagnosticReport>(ecg, 'DiagnosticReport')[0].category![0].coding![0].code).toBe('EC');
  });

  it('maps a prescription: dose, frequency as timing, route, supply', () => {
    const [r] = mapAll(countyJson, county, read('county-hospital', 'cf-prescription.json'));
    const [amlo, atorva] = ofType<MedicationRequest>(r, 'MedicationRequest');
    expect(amlo.dosageInstruction![0]).toMatchObject({ timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } }, route: { text: '口服' }, doseAndRate: [{ doseQuantity: { value: 5, code: 'mg' } }] });
    expect(atorva.dosageInstruction![0].timing!.repeat!.when).toEqual(['NIGHT']);
    expect(amlo.dispenseRequest!.expectedSupplyDuration!.value).toBe(28);
    expect(amlo.authoredOn).toBe('2025-11-05T09:30:00+08:00');
    expect(amlo.encounter!.reference).toBe(`Encounter/${resourceId('county-hospital', 'encounter', 'MZ20251105001')}`);
  });
});

describe('community centre CSV', () => {
  it('maps follow-ups: blood pressure panel, glucose, weight, height, only the values given', () => {
    const records = communityCsv.split(read('community-centre-a', 'followups.csv'));
    expect(records.map((r) => [r.kind, r.localId, r.line])).toEqual([['followup', 'SF202511001', 2], ['followup', 'SF202511002', 3], ['followup', 'SF202511003', 4], ['followup', 'SF202511004', 5]]);
    const [wang, li, , zhao] = records.map((r) => communityCsv.map(r.raw, community));
    const bp = ofType<Observation>(wang, 'Observation').find((o) => o.code.coding![0].code === '85354-9')!;
    expect(bp.component!.map((c) => [c.code.coding![0].code, c.valueQuantity!.value, c.valueQuantity!.code])).toEqual([['8480-6', 148, 'mm[Hg]'], ['8462-4', 92, 'mm[Hg]']]);
    expect(ofType<Observation>(wang, 'Observation').map((o) => o.code.coding![0].code)).toEqual(['85354-9', '29463-7', '8302-2']);
    expect(ofType<Observation>(li, 'Observation').map((o) => o.code.coding![0].code)).toEqual(['85354-9', '1558-6', '29463-7']);
    expect(ofType<Observation>(zhao, 'Observation').map((o) => o.code.coding![0].code)).toEqual(['1558-6', '29463-7']);
    expect(ofType<Patient>(li, 'Patient')[0].identifier).toHaveLength(1); // no ID number given
    expect(ofType<Encounter>(wang, 'Encounter')[0].type![0].text).toBe('高血压随访');
    expect(wang.createOnly).toEqual([]);
    expect(() => validateMappedBundle(wang.bundle, wang.createOnly)).not.toThrow();
  });

  it('maps prescriptions with a create-only patient copy', () => {
    const [r] = communityCsv.split(read('community-centre-a', 'prescriptions.csv')).map((x) => communityCsv.map(x.raw, community));
    const mr = ofType<MedicationRequest>(r, 'MedicationRequest')[0];
    expect(mr.medicationCodeableConcept!.text).toBe('硝苯地平控释片');
    expect(r.unmapped).toEqual([{ system: 'http://example.org/fhir/CodeSystem/community-centre-a-drug', code: 'SQ001', display: '硝苯地平控释片', kind: 'drug' }]);
    expect(r.createOnly).toHaveLength(1);
  });

  it('gives identical bundles for the same record twice', () => {
    const raw = communityCsv.split(read('community-centre-a', 'followups.csv'))[0].raw;
    expect(JSON.stringify(communityCsv.map(raw, community))).toBe(JSON.stringify(communityCsv.map(raw, community)));
  });
});

describe.each([
  ['county-hospital', countyJson, county],
  ['community-centre-a', communityCsv, community],
] as const)('broken %s records fail naming where', (source, mapper, ctx) => {
  const dir = join(FIXTURES, 'broken', source);
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, { stage: 'split' | 'map'; location: string; record?: number }>;
  it('has an expectation for every broken file', () => {
    expect(readdirSync(dir).filter((f) => f !== 'expected.json').sort()).toEqual(Object.keys(expected).sort());
  });
  it.each(Object.entries(expected))('%s', (file, want) => {
    const body = readFileSync(join(dir, file), 'utf8');
    let error: unknown;
    try {
      const records = mapper.split(body);
      if (want.stage === 'split') throw new Error('split should have failed');
      mapper.map(records[want.record ?? 0].raw, ctx);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MappingError);
    expect((error as MappingError).where).toBe(want.location);
  });
});
