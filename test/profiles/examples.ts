import type {
  Bundle,
  Condition,
  DiagnosticReport,
  Encounter,
  ImagingStudy,
  MedicationRequest,
  Observation,
  Organization,
  Patient,
  Resource,
  ServiceRequest,
} from '@medplum/fhirtypes';

/** Synthetic resources as the mappers make them, one conforming example per consortium profile. */
const meta = (): { source: string } => ({ source: 'urn:consortium:source:city-hospital#MSG0001' });
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';
const subject = { reference: 'Patient/p1' };
const facility = { reference: 'Organization/city-hospital' };

export const organization = (): Organization => ({ resourceType: 'Organization', id: 'city-hospital', name: '云溪市第一人民医院' });

export const patient = (): Patient => ({
  resourceType: 'Patient',
  id: 'p1',
  meta: meta(),
  identifier: [
    { use: 'official', type: { coding: [{ system: V2_0203, code: 'NI' }] }, system: 'urn:oid:2.16.156.10011.1.3', value: '339901195803120317' },
    { use: 'usual', type: { coding: [{ system: V2_0203, code: 'MR', display: 'Medical record number' }], text: '病案号' }, system: 'urn:oid:2.16.156.10011.1.11.1', value: '10000101' },
  ],
  name: [{ text: '王小明', family: '王', given: ['小明'] }],
  gender: 'male',
  birthDate: '1958-03-12',
  managingOrganization: facility,
});

export const encounter = (): Encounter => ({
  resourceType: 'Encounter',
  id: 'e1',
  meta: meta(),
  identifier: [{ system: 'urn:consortium:source:city-hospital:visit-number', value: 'MZ202511030101' }],
  status: 'finished',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
  subject,
  period: { start: '2025-11-03T09:00:00+08:00' },
  serviceProvider: facility,
});

export const condition = (): Condition => ({
  resourceType: 'Condition',
  id: 'c1',
  meta: meta(),
  code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'I10' }], text: '原发性高血压' },
  subject,
  encounter: { reference: 'Encounter/e1' },
  recordedDate: '2025-11-03T09:12:00+08:00',
});

export const observation = (): Observation => ({
  resourceType: 'Observation',
  id: 'o1',
  meta: meta(),
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '14771-0' }, { system: 'http://example.org/fhir/CodeSystem/city-hospital-lis', code: 'GLU' }] },
  subject,
  effectiveDateTime: '2025-11-05T08:05:00+08:00',
  performer: [facility],
  valueQuantity: { value: 8.6, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
});

export const labReport = (): DiagnosticReport => ({
  resourceType: 'DiagnosticReport',
  id: 'r1',
  meta: meta(),
  status: 'final',
  category: [{ coding: [{ system: V2_0074, code: 'LAB' }] }],
  code: { text: '生化全套' },
  subject,
  effectiveDateTime: '2025-11-05T08:05:00+08:00',
  issued: '2025-11-05T11:40:00+08:00',
  performer: [facility],
  result: [{ reference: 'Observation/o1' }],
});

export const imagingReport = (): DiagnosticReport => ({
  resourceType: 'DiagnosticReport',
  id: 'r2',
  meta: meta(),
  status: 'final',
  category: [{ coding: [{ system: V2_0074, code: 'RAD' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '30745-4' }], text: '胸部CT平扫' },
  subject,
  effectiveDateTime: '2025-11-06T10:00:00+08:00',
  issued: '2025-11-06T14:20:00+08:00',
  performer: [facility],
  imagingStudy: [{ reference: 'ImagingStudy/s1' }],
  conclusion: '右肺下叶炎症，建议抗感染治疗后复查。',
});

export const imagingStudy = (): ImagingStudy => ({
  resourceType: 'ImagingStudy',
  id: 's1',
  meta: meta(),
  identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.156.600734.1.20251106.103' }],
  status: 'available',
  subject,
});

export const serviceRequest = (): ServiceRequest => ({
  resourceType: 'ServiceRequest',
  id: 'sr1',
  meta: meta(),
  status: 'active',
  intent: 'order',
  code: { coding: [{ system: 'http://loinc.org', code: '58410-2' }], text: '血常规' },
  subject,
  authoredOn: '2025-11-03T09:30:00+08:00',
  requester: { identifier: { system: 'urn:consortium:source:city-hospital:practitioner', value: 'D0123' }, display: '刘医生' },
});

export const medicationRequest = (): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id: 'mr1',
  meta: meta(),
  status: 'active',
  intent: 'order',
  medicationCodeableConcept: { coding: [{ system: 'http://example.org/fhir/CodeSystem/city-hospital-drug', code: 'YP0001' }], text: '硝苯地平控释片' },
  subject,
  authoredOn: '2025-11-03T09:40:00+08:00',
  dosageInstruction: [{ text: '30 mg 口服 每日一次' }],
});

/** One conforming example of each profile, by resource type. */
export const conforming = {
  Patient: patient,
  Encounter: encounter,
  Condition: condition,
  Observation: observation,
  DiagnosticReport: labReport,
  ImagingStudy: imagingStudy,
  ServiceRequest: serviceRequest,
  MedicationRequest: medicationRequest,
} as const;

export type ProfiledType = keyof typeof conforming;

/** A transaction of PUTs, as the mappers make it. */
export const transaction = (...resources: Resource[]): Bundle => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry: resources.map((r) => ({ fullUrl: `urn:uuid:${r.id}`, resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })),
});
