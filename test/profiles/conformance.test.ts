import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, ElementDefinition, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { consortiumProfiles, loadProfiles, profileFor, stampProfiles, validateMappedBundle } from '../../profiles/conformance';
import { compileProfile } from '../../profiles/profile-compiler';
import { createValidator } from '../../profiles/validator';
import { FhirError } from '../../store/errors';
import * as ex from './examples';
import { r4BaseElements } from './r4-base';

const BASE = 'http://consortium.example/fhir/StructureDefinition/';
const CORE = 'http://hl7.org/fhir/StructureDefinition/';

type Doc = Record<string, unknown>;

function rejection(bundle: Bundle, createOnly?: string[]): FhirError {
  try {
    validateMappedBundle(bundle, createOnly);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('expected the bundle to be rejected');
}

/** The object holding the last step of a dotted path (array indexes as steps: 'identifier.1.system'). */
function holder(doc: Doc, path: string): [Doc, string] {
  const steps = path.split('.');
  const parent = steps.slice(0, -1).reduce<Doc>((d, s) => d[s] as Doc, doc);
  return [parent, steps[steps.length - 1]];
}
const drop = (path: string) => (doc: Doc) => {
  const [parent, key] = holder(doc, path);
  delete parent[key];
};
const set = (path: string, value: unknown) => (doc: Doc) => {
  const [parent, key] = holder(doc, path);
  parent[key] = value;
};

const group = { reference: 'Group/g1' };
const onlyIdCard = [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NI' }] }, system: 'urn:oid:2.16.156.10011.1.3', value: '339901195803120317' }];

/** [conforming example, what breaks exactly one rule, expression below the resource, issue code, element named]. */
const RULES: [() => Resource, (doc: Doc) => void, string, 'required' | 'invariant', string][] = [
  [ex.patient, drop('meta'), 'meta', 'required', 'Patient.meta'],
  [ex.patient, set('identifier', onlyIdCard), 'identifier', 'required', 'Patient.identifier:mrn'],
  [ex.patient, drop('identifier.1.system'), 'identifier[1].system', 'required', 'Patient.identifier:mrn.system'],
  [ex.patient, drop('identifier.1.value'), 'identifier[1].value', 'required', 'Patient.identifier:mrn.value'],
  [ex.patient, drop('name'), 'name', 'required', 'Patient.name'],
  [ex.patient, drop('gender'), 'gender', 'required', 'Patient.gender'],
  [ex.patient, drop('managingOrganization'), 'managingOrganization', 'required', 'Patient.managingOrganization'],
  [ex.patient, set('managingOrganization', { reference: 'Patient/p2' }), 'managingOrganization', 'invariant', 'Patient.managingOrganization'],
  [ex.encounter, drop('identifier'), 'identifier', 'required', 'Encounter.identifier'],
  [ex.encounter, drop('status'), 'status', 'required', 'Encounter.status'],
  [ex.encounter, drop('class'), 'class', 'required', 'Encounter.class'],
  [ex.encounter, drop('subject'), 'subject', 'required', 'Encounter.subject'],
  [ex.encounter, set('subject', group), 'subject', 'invariant', 'Encounter.subject'],
  [ex.encounter, drop('period'), 'period', 'required', 'Encounter.period'],
  [ex.encounter, set('period', { end: '2025-11-03T10:00:00+08:00' }), 'period.start', 'required', 'Encounter.period.start'],
  [ex.encounter, drop('serviceProvider'), 'serviceProvider', 'required', 'Encounter.serviceProvider'],
  [ex.encounter, set('serviceProvider', { reference: 'Patient/p1' }), 'serviceProvider', 'invariant', 'Encounter.serviceProvider'],
  [ex.condition, drop('code'), 'code', 'required', 'Condition.code'],
  [ex.condition, set('code', { text: '高血压' }), 'code.coding', 'required', 'Condition.code.coding'],
  [ex.condition, drop('subject'), 'subject', 'required', 'Condition.subject'],
  [ex.condition, set('subject', group), 'subject', 'invariant', 'Condition.subject'],
  [ex.condition, drop('recordedDate'), 'recordedDate', 'required', 'Condition.recordedDate'],
  [ex.observation, drop('status'), 'status', 'required', 'Observation.status'],
  [ex.observation, drop('category'), 'category', 'required', 'Observation.category'],
  [ex.observation, drop('code'), 'code', 'required', 'Observation.code'],
  [ex.observation, set('code', { text: '空腹血糖' }), 'code.coding', 'required', 'Observation.code.coding'],
  [ex.observation, drop('subject'), 'subject', 'required', 'Observation.subject'],
  [ex.observation, set('subject', { reference: 'Device/d1' }), 'subject', 'invariant', 'Observation.subject'],
  [ex.observation, drop('effectiveDateTime'), 'effective', 'required', 'Observation.effective[x]'],
  [ex.observation, drop('performer'), 'performer', 'required', 'Observation.performer'],
  [ex.observation, set('performer', [{ reference: 'Organization/city-hospital' }, { reference: 'Patient/p1' }]), 'performer[1]', 'invariant', 'Observation.performer'],
  [ex.labReport, drop('status'), 'status', 'required', 'DiagnosticReport.status'],
  [ex.labReport, drop('category'), 'category', 'required', 'DiagnosticReport.category'],
  [ex.labReport, drop('code'), 'code', 'required', 'DiagnosticReport.code'],
  [ex.labReport, drop('subject'), 'subject', 'required', 'DiagnosticReport.subject'],
  [ex.labReport, set('subject', group), 'subject', 'invariant', 'DiagnosticReport.subject'],
  [ex.labReport, drop('effectiveDateTime'), 'effective', 'required', 'DiagnosticReport.effective[x]'],
  [ex.labReport, drop('issued'), 'issued', 'required', 'DiagnosticReport.issued'],
  [ex.labReport, drop('performer'), 'performer', 'required', 'DiagnosticReport.performer'],
  [ex.labReport, drop('result'), '', 'invariant', 'constraint cdr-1'],
  [ex.imagingReport, drop('conclusion'), '', 'invariant', 'constraint cdr-2'],
  [ex.imagingStudy, drop('identifier'), 'identifier', 'required', 'ImagingStudy.identifier'],
  [ex.imagingStudy, drop('subject'), 'subject', 'required', 'ImagingStudy.subject'],
  [ex.imagingStudy, set('subject', group), 'subject', 'invariant', 'ImagingStudy.subject'],
  [ex.serviceRequest, drop('status'), 'status', 'required', 'ServiceRequest.status'],
  [ex.serviceRequest, drop('intent'), 'intent', 'required', 'ServiceRequest.intent'],
  [ex.serviceRequest, drop('code'), 'code', 'required', 'ServiceRequest.code'],
  [ex.serviceRequest, set('subject', group), 'subject', 'invariant', 'ServiceRequest.subject'],
  [ex.serviceRequest, drop('authoredOn'), 'authoredOn', 'required', 'ServiceRequest.authoredOn'],
  [ex.serviceRequest, set('requester', { reference: 'Patient/p1' }), 'requester', 'invariant', 'ServiceRequest.requester'],
  [ex.medicationRequest, drop('status'), 'status', 'required', 'MedicationRequest.status'],
  [ex.medicationRequest, drop('intent'), 'intent', 'required', 'MedicationRequest.intent'],
  [ex.medicationRequest, drop('medicationCodeableConcept'), 'medication', 'required', 'MedicationRequest.medication[x]'],
  [ex.medicationRequest, drop('subject'), 'subject', 'required', 'MedicationRequest.subject'],
  [ex.medicationRequest, set('subject', group), 'subject', 'invariant', 'MedicationRequest.subject'],
  [ex.medicationRequest, drop('authoredOn'), 'authoredOn', 'required', 'MedicationRequest.authoredOn'],
  [ex.medicationRequest, drop('dosageInstruction'), 'dosageInstruction', 'required', 'MedicationRequest.dosageInstruction'],
];

const PROFILED = Object.keys(ex.conforming) as ex.ProfiledType[];

describe('validating mapped bundles against the consortium profiles', () => {
  it('accepts a conforming example of every profile', () => {
    const all = [ex.organization(), ...PROFILED.map((t) => ex.conforming[t]()), ex.imagingReport()];
    expect(() => validateMappedBundle(ex.transaction(...all))).not.toThrow();
  });

  it.each(RULES.map(([make, breakIt, at, code, element]) => [`${element} (${code}${at ? ` at ${at}` : ''})`, make, breakIt, at, code, element] as const))(
    'rejects a resource breaking %s',
    (_name, make, breakIt, at, code, element) => {
      const broken = make();
      breakIt(broken as unknown as Doc);
      const err = rejection(ex.transaction(ex.organization(), broken));
      expect(err.status).toBe(422);
      expect(err.outcome.issue).toHaveLength(1);
      expect(err.code).toBe(code);
      expect(err.expression).toEqual([at ? `Bundle.entry[1].resource.${at}` : 'Bundle.entry[1].resource']);
      expect(err.message).toContain(element);
      expect(err.message).toContain(`${BASE}consortium-${broken.resourceType.toLowerCase()}`);
    },
  );

  it.each(PROFILED)('requires meta.source, the provenance of the record, on %s', (type) => {
    const broken = ex.conforming[type]();
    delete broken.meta!.source;
    const err = rejection(ex.transaction(broken));
    expect(err.expression).toEqual(['Bundle.entry[0].resource.meta.source']);
    expect(err.message).toContain(`${type}.meta.source`);
    expect(err.message).toContain(profileFor(type));
  });

  it('reports every broken element: the first as the error, the others as further issues', () => {
    const o = ex.observation();
    delete o.subject;
    delete o.effectiveDateTime;
    const err = rejection(ex.transaction(ex.patient(), o));
    expect(err.expression).toEqual(['Bundle.entry[1].resource.subject']);
    expect(err.extraIssues.map((i) => [i.code, i.expression])).toEqual([['required', ['Bundle.entry[1].resource.effective']]]);
    expect(err.outcome.issue).toHaveLength(2);
  });

  it('accepts any form of a choice element', () => {
    const o = ex.observation();
    delete o.effectiveDateTime;
    o.effectivePeriod = { start: '2025-11-05T08:00:00+08:00', end: '2025-11-05T08:30:00+08:00' };
    expect(() => validateMappedBundle(ex.transaction(o))).not.toThrow();
  });

  it('finds the type a reference points at in a transaction fullUrl, an absolute URL or Reference.type', () => {
    const subjectIs = (subject: object): Bundle => ex.transaction(ex.organization(), ex.patient(), { ...ex.observation(), subject });
    expect(() => validateMappedBundle(subjectIs({ reference: 'urn:uuid:p1' }))).not.toThrow();
    expect(rejection(subjectIs({ reference: 'urn:uuid:city-hospital' })).message).toContain('not Organization');
    expect(rejection(subjectIs({ reference: 'https://other.example/fhir/Group/9/_history/2' })).message).toContain('not Group');
    expect(rejection(subjectIs({ type: 'Device', identifier: { value: 'ECG-01' } })).message).toContain('not Device');
    // Known only by identifier: nothing to check against.
    expect(() => validateMappedBundle(subjectIs({ identifier: { system: 'urn:oid:2.16.156.10011.1.11.1', value: '10000101' } }))).not.toThrow();
  });

  it('holds only released reports to the report invariants, and takes the report document for a conclusion', () => {
    const pending = { ...ex.labReport(), status: 'registered' as const };
    delete pending.result;
    const ecg = { ...ex.imagingReport(), category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'EC' }] }] };
    delete ecg.conclusion;
    ecg.presentedForm = [{ contentType: 'application/pdf', title: '心电图报告' }];
    expect(() => validateMappedBundle(ex.transaction(pending, ecg))).not.toThrow();
    delete ecg.presentedForm;
    expect(rejection(ex.transaction(pending, ecg)).message).toContain('constraint cdr-2');
  });

  it('does not hold copies of demographics (createOnly) to the profile, and does not stamp them unless they conform', () => {
    const copy = ex.patient();
    delete copy.name;
    delete copy.gender;
    const fullCopy = { ...ex.patient(), id: 'p2' };
    const b = ex.transaction(copy, fullCopy, ex.observation());
    expect(rejection(b).expression).toEqual(['Bundle.entry[0].resource.name']);
    validateMappedBundle(b, ['urn:uuid:p1', 'urn:uuid:p2']);
    stampProfiles(b, ['urn:uuid:p1', 'urn:uuid:p2']);
    expect(b.entry!.map((e) => e.resource!.meta?.profile)).toEqual([undefined, [profileFor('Patient')], [profileFor('Observation')]]);
  });
});

describe('stamping profiles', () => {
  it('sets meta.profile to the consortium profile, keeps the rest of meta, and leaves unprofiled types alone', () => {
    const o = ex.observation();
    o.meta!.profile = ['http://example.org/fhir/StructureDefinition/vendor-lab'];
    const b = ex.transaction(ex.organization(), o);
    stampProfiles(b);
    stampProfiles(b);
    expect(b.entry![0].resource!.meta).toBeUndefined();
    expect(b.entry![1].resource!.meta).toEqual({ source: 'urn:consortium:source:city-hospital#MSG0001', profile: [`${BASE}consortium-observation`] });
  });

  it('names the profile of each profiled type and none for others', () => {
    expect(PROFILED.map((t) => profileFor(t))).toEqual(PROFILED.map((t) => `${BASE}consortium-${t.toLowerCase()}`));
    expect(profileFor('Organization')).toBeUndefined();
  });
});

describe('the published StructureDefinitions', () => {
  const definitions = consortiumProfiles();

  it('are one per profiled type, and copies that callers may change', () => {
    expect(definitions.map((sd) => sd.type).sort()).toEqual([...PROFILED].sort());
    definitions[0].differential!.element = [];
    expect(consortiumProfiles()[0].differential!.element.length).toBeGreaterThan(0);
  });

  it('are valid R4 StructureDefinitions, as are the conforming examples', () => {
    const validate = createValidator();
    for (const sd of consortiumProfiles()) expect(() => validate(sd)).not.toThrow();
    for (const make of [...Object.values(ex.conforming), ex.imagingReport, ex.organization]) expect(() => validate(make())).not.toThrow();
  });

  it.each(consortiumProfiles().map((sd) => [sd.name!, sd] as const))('%s has the header a published profile needs', (_name, sd) => {
    expect(sd).toMatchObject({
      url: `${BASE}${sd.id}`,
      status: 'active',
      publisher: 'Consortium office (demo)',
      fhirVersion: '4.0.1',
      kind: 'resource',
      abstract: false,
      derivation: 'constraint',
      baseDefinition: `${CORE}${sd.type}`,
    });
    expect(sd.name).toMatch(/^Consortium[A-Z][A-Za-z]+$/);
    expect(sd.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(sd.snapshot).toBeUndefined();
    expect(sd.differential!.element.find((e) => e.id === `${sd.type}.meta.source`)?.min).toBe(1);
  });

  it('only narrow what R4 allows: every path exists, cardinalities within the base, reference targets among its targets', () => {
    const base = r4BaseElements();
    const problems: string[] = [];
    const maxOf = (max: string | undefined): number => (max === '*' ? Infinity : Number(max));
    const targetsOf = (el: ElementDefinition): string[] => (el.type ?? []).flatMap((t) => t.targetProfile ?? []);
    for (const sd of definitions) {
      for (const el of sd.differential!.element) {
        const core = base(el.path);
        if (!core) {
          problems.push(`${el.id}: no such element in R4`);
          continue;
        }
        if (el.min !== undefined && el.min < core.min!) problems.push(`${el.id}: min ${el.min} below the base ${core.min}`);
        if (el.max !== undefined && maxOf(el.max) > maxOf(core.max)) problems.push(`${el.id}: max ${el.max} above the base ${core.max}`);
        const outside = targetsOf(el).filter((t) => !targetsOf(core).includes(t));
        if (outside.length > 0) problems.push(`${el.id}: targets ${outside.join(', ')} not allowed by the base`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('compiling profiles', () => {
  const definitionOf = (type: string): StructureDefinition => consortiumProfiles().find((sd) => sd.type === type)!;
  const element = (sd: StructureDefinition, id: string): ElementDefinition => sd.differential!.element.find((e) => e.id === id)!;
  const patch = (id: string, props: object) => (sd: StructureDefinition) => Object.assign(element(sd, id), props);
  const constraint = (props: object) => patch('Observation', { constraint: [{ key: 'x-1', severity: 'error', human: 'x', expression: 'status.exists()', ...props }] });

  it.each<[string, string, (sd: StructureDefinition) => void, RegExp]>([
    ['a binding', 'Observation', patch('Observation.code', { binding: { strength: 'required', valueSet: 'http://loinc.org/vs' } }), /Observation\.code: binding cannot be enforced/],
    ['fixed[x]', 'Observation', patch('Observation.status', { fixedCode: 'final' }), /Observation\.status: fixedCode cannot be enforced/],
    ['maxLength', 'Observation', patch('Observation.meta.source', { maxLength: 200 }), /maxLength cannot be enforced/],
    ['a warning invariant', 'Observation', constraint({ severity: 'warning' }), /constraint x-1: severity warning: only error invariants/],
    ['an invariant that does not parse', 'Observation', constraint({ expression: 'status.where(' }), /constraint x-1: FHIRPath does not parse/],
    ['an invariant without FHIRPath', 'Observation', constraint({ expression: undefined }), /constraint x-1: has no FHIRPath expression/],
    ['a type narrowed to a data type', 'Observation', patch('Observation.effective[x]', { type: [{ code: 'dateTime' }] }), /Observation\.effective\[x\]: type dateTime: only Reference/],
    ['a reference aggregation', 'Observation', patch('Observation.subject', { type: [{ code: 'Reference', aggregation: ['bundled'] }] }), /type\.aggregation cannot be enforced/],
    ['a target that is another profile', 'Observation', patch('Observation.subject', { type: [{ code: 'Reference', targetProfile: [`${BASE}consortium-patient`] }] }), /only core resource types/],
    ['closed slicing', 'Patient', patch('Patient.identifier', { slicing: { discriminator: [{ type: 'pattern', path: 'type' }], rules: 'closed' } }), /only open slicing/],
    ['a type discriminator', 'Patient', patch('Patient.identifier', { slicing: { discriminator: [{ type: 'type', path: '$this' }], rules: 'open' } }), /only pattern and value/],
    ['a slice without its pattern', 'Patient', (sd) => delete element(sd, 'Patient.identifier:mrn.type').patternCodeableConcept, /Patient\.identifier:mrn: has no pattern at its discriminator path 'type'/],
    ['a slice of an unsliced element', 'Patient', (sd) => delete element(sd, 'Patient.identifier').slicing, /slices Patient\.identifier, which declares no slicing/],
    ['an element of another type', 'Observation', (sd) => sd.differential!.element.push({ id: 'Patient.name', path: 'Patient.name', min: 1 }), /Patient\.name: is not an element of Observation/],
    ['an element twice', 'Observation', (sd) => sd.differential!.element.push({ id: 'Observation.code', path: 'Observation.code', max: '1' }), /Observation\.code: appears twice/],
    ['a snapshot', 'Observation', (sd) => (sd.snapshot = { element: [] }), /only the differential is compiled/],
    ['a profile on another profile', 'Observation', (sd) => (sd.baseDefinition = `${BASE}consortium-observation`), /baseDefinition: must be/],
  ])('refuses a profile with %s', (_name, type, change, message) => {
    const sd = definitionOf(type);
    change(sd);
    expect(() => compileProfile(sd)).toThrow(message);
  });

  it('names the file that cannot be loaded, and refuses two profiles for one type', () => {
    const bad = definitionOf('Observation');
    patch('Observation.code', { binding: { strength: 'required', valueSet: 'http://loinc.org/vs' } })(bad);
    const dir = mkdtempSync(join(tmpdir(), 'profiles-'));
    writeFileSync(join(dir, 'observation.json'), JSON.stringify(bad));
    expect(() => loadProfiles(dir)).toThrow(/^observation\.json: Profile http:\/\/consortium\.example\/.*binding cannot be enforced/);

    const twin = mkdtempSync(join(tmpdir(), 'profiles-'));
    for (const name of ['a.json', 'b.json']) writeFileSync(join(twin, name), JSON.stringify(definitionOf('Observation')));
    expect(() => loadProfiles(twin)).toThrow('b.json: a second profile for Observation');
  });
});
