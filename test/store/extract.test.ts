import { extractIndexRows, fallbackParams, parseReference } from '../../store/extract';
import { parseDateRange } from '../../store/fhir-date';
import type { IndexRows } from '../../store/index-rows';
import { getParam, getParams, isKnownResourceType, splitUnion } from '../../store/search-params';

/** Synthetic fixtures only: no real people, ids or numbers. */
type R = { resourceType: string; id: string; [k: string]: unknown };

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const SNOMED = 'http://snomed.info/sct';
const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
const ID_CARD = 'urn:oid:2.16.156.10011.1.3'; // WS/T 500 resident identity card
const MRN = 'urn:oid:2.16.156.10011.1.11.1';
const OBS_CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';
const SOURCE = 'urn:consortium:source';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

const observation: R = {
  resourceType: 'Observation',
  id: 'obs-1',
  meta: {
    tag: [{ system: SOURCE, code: 'hospital-a', display: 'Hospital A' }],
    security: [{ system: CONF, code: 'N' }],
    profile: ['http://example.org/fhir/StructureDefinition/lab-result'],
    source: 'urn:consortium:lis-a',
  },
  identifier: [{ system: 'urn:oid:2.16.156.10011.1.11.1.2', value: 'LIS-2024-000123' }],
  status: 'final',
  category: [{ coding: [{ system: OBS_CAT, code: 'laboratory', display: 'Laboratory' }] }],
  code: {
    coding: [
      { system: LOINC, code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood' },
      { system: 'urn:local:lis', code: 'HGB', display: '血红蛋白' },
    ],
    text: '血红蛋白',
  },
  subject: { reference: 'Patient/p-1' },
  encounter: { reference: 'Encounter/e-1' },
  effectiveDateTime: '2024-03-05T10:00:00+08:00',
  issued: '2024-03-05T11:30:00.000+08:00',
  performer: [{ reference: 'Practitioner/pr-1' }, { reference: 'Organization/org-1' }],
  valueQuantity: { value: 135, unit: 'g/L', system: UCUM, code: 'g/L' },
  referenceRange: [{ low: { value: 120, unit: 'g/L' }, high: { value: 160, unit: 'g/L' } }],
};

const patient: R = {
  resourceType: 'Patient',
  id: 'p-1',
  identifier: [
    { system: ID_CARD, value: '110101199003070000', type: { text: '居民身份证' } },
    { system: MRN, value: 'MRN-0001' },
  ],
  active: true,
  name: [
    { use: 'official', text: '王小明', family: '王', given: ['小明'] },
    { use: 'usual', family: 'Wang', given: ['Xiaoming'], prefix: ['Mr.'] },
  ],
  telecom: [{ system: 'phone', value: '13800000000', use: 'mobile' }],
  gender: 'male',
  birthDate: '1990-03-07',
  address: [{ use: 'home', line: ['文三路 100 号'], city: '杭州市', district: '西湖区', state: '浙江省', postalCode: '310012', country: 'CN' }],
  managingOrganization: { reference: 'Organization/org-1' },
};

const encounter: R = {
  resourceType: 'Encounter',
  id: 'e-1',
  status: 'finished',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP', display: 'inpatient encounter' },
  type: [{ coding: [{ system: SNOMED, code: '183452005', display: 'Emergency hospital admission' }] }],
  subject: { reference: 'Patient/p-1' },
  participant: [{ individual: { reference: 'Practitioner/pr-1' } }],
  period: { start: '2024-03-05T08:30:00+08:00', end: '2024-03-07T10:00:00+08:00' },
  length: { value: 2, unit: 'days', system: UCUM, code: 'd' },
  location: [{ location: { reference: 'Location/ward-3' }, period: { start: '2024-03-05' } }],
  serviceProvider: { reference: 'Organization/org-1' },
};

const condition: R = {
  resourceType: 'Condition',
  id: 'cond-1',
  clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
  verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis' }] }],
  code: { coding: [{ system: ICD10, code: 'E11.9', display: 'Type 2 diabetes mellitus without complications' }], text: '2型糖尿病' },
  subject: { reference: 'Patient/p-1' },
  encounter: { reference: 'Encounter/e-1' },
  onsetDateTime: '2019',
  recordedDate: '2024-03-05',
  asserter: { reference: 'Practitioner/pr-1' },
};

const medicationRequest: R = {
  resourceType: 'MedicationRequest',
  id: 'mr-1',
  status: 'active',
  intent: 'order',
  priority: 'routine',
  medicationCodeableConcept: { coding: [{ system: 'urn:oid:2.16.156.10011.2.3.1', code: 'X-A10BA02', display: '二甲双胍片' }] },
  subject: { reference: 'Patient/p-1' },
  encounter: { reference: 'Encounter/e-1' },
  authoredOn: '2024-03-05T09:15:00+08:00',
  requester: { reference: 'Practitioner/pr-1' },
  dosageInstruction: [{ text: '0.5g 每日两次', timing: { event: ['2024-03-05T08:00:00+08:00', '2024-03-05T20:00:00+08:00'] } }],
};

const diagnosticReport: R = {
  resourceType: 'DiagnosticReport',
  id: 'dr-1',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'HM', display: 'Hematology' }] }],
  code: { coding: [{ system: LOINC, code: '58410-2', display: 'CBC panel - Blood by Automated count' }] },
  subject: { reference: 'Patient/p-1' },
  effectivePeriod: { start: '2024-03-05T09:00:00+08:00', end: '2024-03-05T10:00:00+08:00' },
  issued: '2024-03-05T11:45:00.000+08:00',
  performer: [{ reference: 'Organization/org-1' }],
  result: [{ reference: 'Observation/obs-1' }, { reference: 'Observation/obs-2' }, { reference: '#inline-1' }],
  conclusionCode: [{ coding: [{ system: SNOMED, code: '281302008', display: 'Above reference range' }] }],
};

const task: R = {
  resourceType: 'Task',
  id: 'task-1',
  status: 'requested',
  businessStatus: { text: 'Awaiting review' },
  intent: 'order',
  priority: 'urgent',
  code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' }] },
  focus: { reference: 'ServiceRequest/sr-1' },
  for: { reference: 'Patient/p-1' },
  authoredOn: '2024-03-05T09:00:00+08:00',
  lastModified: '2024-03-05T09:30:00+08:00',
  requester: { reference: 'Organization/org-1' },
  owner: { reference: 'PractitionerRole/prr-1' },
  executionPeriod: { start: '2024-03-06' },
};

const consent: R = {
  resourceType: 'Consent',
  id: 'consent-1',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: LOINC, code: '59284-0', display: 'Patient Consent' }] }],
  patient: { reference: 'Patient/p-1' },
  dateTime: '2024-01-10',
  performer: [{ reference: 'Patient/p-1' }],
  organization: [{ reference: 'Organization/org-1' }],
  sourceReference: { reference: 'DocumentReference/doc-1' },
  policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
  provision: {
    type: 'permit',
    period: { start: '2024-01-10', end: '2025-01-09' },
    actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: 'Organization/org-2' } }],
    action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'access' }] }],
    purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
    data: [{ meaning: 'related', reference: { reference: 'Encounter/e-1' } }],
  },
};

const auditEvent: R = {
  resourceType: 'AuditEvent',
  id: 'audit-1',
  type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110110', display: 'Patient Record' },
  subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
  action: 'R',
  recorded: '2024-03-05T10:15:30.123+08:00',
  outcome: '0',
  agent: [
    {
      who: { reference: 'Practitioner/pr-1' },
      name: '张医生',
      altId: 'emp-0042',
      requestor: true,
      role: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleClass', code: 'PROV' }] }],
      network: { address: '10.0.0.12', type: '2' },
    },
  ],
  source: { site: 'hospital-a', observer: { reference: 'Device/gw-1' } },
  entity: [
    {
      what: { reference: 'Patient/p-1' },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1' },
      name: 'patient record',
    },
  ],
};

const provenance: R = {
  resourceType: 'Provenance',
  id: 'prov-1',
  target: [{ reference: 'Observation/obs-1' }, { reference: 'Patient/p-1' }],
  occurredDateTime: '2024-03-05T10:00:00+08:00',
  recorded: '2024-03-05T10:05:00.000+08:00',
  location: { reference: 'Location/ward-3' },
  agent: [
    {
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author' }] },
      who: { reference: 'Practitioner/pr-1' },
    },
  ],
  entity: [{ role: 'source', what: { reference: 'DocumentReference/doc-1' } }],
  signature: [{ type: [{ system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1' }], when: '2024-03-05T10:05:00+08:00', who: { reference: 'Practitioner/pr-1' } }],
};

/** One or more fixtures per resource type for the compiled-vs-fallback property test. */
const fixtures: R[] = [
  patient,
  { ...patient, id: 'p-2', deceasedDateTime: '2024-02-01T03:00:00Z', telecom: [{ system: 'email', value: 'li.hua@example.org' }, { system: 'phone', value: '057100000000' }], name: [{ family: 'Núñez', given: ['José', 'María'], suffix: ['Jr.'] }] },
  { ...patient, id: 'p-3', deceasedBoolean: false, address: [{ text: '浙江省杭州市西湖区文三路 100 号' }] },
  encounter,
  condition,
  { ...condition, id: 'cond-2', onsetDateTime: undefined, onsetAge: { value: 52, unit: 'a', system: UCUM, code: 'a' }, abatementString: 'resolved after treatment' },
  { ...condition, id: 'cond-3', onsetDateTime: undefined, onsetPeriod: { start: '2019-05', end: '2019-06' }, abatementRange: { low: { value: 60, unit: 'a' } } },
  observation,
  {
    resourceType: 'Observation',
    id: 'obs-2',
    status: 'final',
    code: { coding: [{ system: LOINC, code: '85354-9', display: 'Blood pressure panel' }] },
    subject: { reference: 'Patient/p-1' },
    effectivePeriod: { start: '2024-03-05T10:00:00+08:00' },
    component: [
      { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: { value: 128, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } },
      { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: { value: 82, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } },
    ],
  },
  {
    resourceType: 'Observation',
    id: 'obs-3',
    status: 'preliminary',
    code: { coding: [{ system: LOINC, code: '883-9' }] },
    subject: { reference: 'Group/g-1' },
    focus: [{ reference: 'Specimen/sp-1' }],
    valueCodeableConcept: { coding: [{ system: SNOMED, code: '112144000', display: 'Blood group A' }], text: 'A 型' },
    dataAbsentReason: undefined,
  },
  { resourceType: 'Observation', id: 'obs-4', status: 'final', code: { text: '备注' }, valueString: '阴性 Negative', effectiveInstant: '2024-03-05T02:00:00.5Z' },
  diagnosticReport,
  {
    resourceType: 'ImagingStudy',
    id: 'img-1',
    status: 'available',
    subject: { reference: 'Patient/p-1' },
    started: '2024-03-05T14:20:00+08:00',
    referrer: { reference: 'Practitioner/pr-1' },
    identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:2.25.100000000000000000000000000000000001' }],
    series: [
      {
        uid: '2.25.100000000000000000000000000000000002',
        modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' },
        bodySite: { system: SNOMED, code: '51185008', display: 'Thorax' },
        performer: [{ actor: { reference: 'Practitioner/pr-2' } }],
        instance: [{ uid: '2.25.100000000000000000000000000000000003', sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.2' } }],
      },
    ],
  },
  medicationRequest,
  { ...medicationRequest, id: 'mr-2', medicationCodeableConcept: undefined, medicationReference: { reference: 'Medication/med-1' } },
  {
    resourceType: 'Medication',
    id: 'med-1',
    code: { coding: [{ system: 'urn:oid:2.16.156.10011.2.3.1', code: 'X-A10BA02', display: '二甲双胍片' }] },
    status: 'active',
    manufacturer: { reference: 'Organization/org-pharma' },
    form: { text: '片剂' },
    ingredient: [{ itemCodeableConcept: { coding: [{ system: SNOMED, code: '372567009', display: 'Metformin' }] }, isActive: true }, { itemReference: { reference: 'Substance/sub-1' } }],
    batch: { lotNumber: 'LOT-2024-01', expirationDate: '2026-01-31' },
  },
  {
    resourceType: 'ServiceRequest',
    id: 'sr-1',
    status: 'active',
    intent: 'order',
    category: [{ coding: [{ system: SNOMED, code: '108252007', display: 'Laboratory procedure' }] }],
    code: { coding: [{ system: LOINC, code: '58410-2' }] },
    subject: { reference: 'Patient/p-1' },
    occurrenceDateTime: '2024-03-06',
    authoredOn: '2024-03-05T09:00:00+08:00',
    requester: { reference: 'Practitioner/pr-1' },
    performer: [{ reference: 'Organization/org-1' }],
    requisition: { system: 'urn:consortium:requisition', value: 'REQ-1' },
    instantiatesUri: ['http://example.org/protocols/cbc'],
    orderDetail: [{ text: '空腹' }],
  },
  {
    resourceType: 'Procedure',
    id: 'proc-1',
    status: 'completed',
    code: { coding: [{ system: SNOMED, code: '80146002', display: 'Appendectomy' }] },
    subject: { reference: 'Patient/p-1' },
    performedPeriod: { start: '2024-03-06T08:00:00+08:00', end: '2024-03-06T09:10:00+08:00' },
    performer: [{ actor: { reference: 'Practitioner/pr-2' } }],
    location: { reference: 'Location/or-1' },
    reasonCode: [{ text: '急性阑尾炎' }],
  },
  {
    resourceType: 'AllergyIntolerance',
    id: 'allergy-1',
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
    type: 'allergy',
    category: ['medication'],
    criticality: 'high',
    code: { coding: [{ system: SNOMED, code: '764146007', display: 'Penicillin' }], text: '青霉素' },
    patient: { reference: 'Patient/p-1' },
    recordedDate: '2023-11-02',
    reaction: [{ manifestation: [{ coding: [{ system: SNOMED, code: '271807003', display: 'Rash' }] }], severity: 'moderate', onset: '2023-11-01' }],
  },
  {
    resourceType: 'Organization',
    id: 'org-1',
    active: true,
    identifier: [{ system: 'urn:oid:2.16.156.10011.1.5', value: '12330000000000000X' }],
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov' }] }],
    name: '市第一人民医院',
    alias: ['一院'],
    address: [{ city: '杭州市', district: '上城区', country: 'CN' }],
    partOf: { reference: 'Organization/consortium' },
  },
  {
    resourceType: 'Practitioner',
    id: 'pr-1',
    active: true,
    identifier: [{ system: 'urn:oid:2.16.156.10011.1.4', value: 'DOC-0001' }],
    name: [{ family: '张', given: ['伟'] }],
    telecom: [{ system: 'email', value: 'zhang.wei@example.org' }, { system: 'phone', value: '057100000001' }],
    gender: 'male',
    communication: [{ coding: [{ system: 'urn:ietf:bcp:47', code: 'zh-CN' }] }],
  },
  {
    resourceType: 'PractitionerRole',
    id: 'prr-1',
    active: true,
    practitioner: { reference: 'Practitioner/pr-1' },
    organization: { reference: 'Organization/org-1' },
    code: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/practitioner-role', code: 'doctor' }] }],
    specialty: [{ coding: [{ system: SNOMED, code: '394579002', display: 'Cardiology' }] }],
    location: [{ reference: 'Location/ward-3' }],
    period: { start: '2020-01-01' },
    telecom: [{ system: 'phone', value: '057100000002' }],
  },
  {
    resourceType: 'Location',
    id: 'ward-3',
    status: 'active',
    name: '心内科三病区',
    alias: ['Cardiology Ward 3'],
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'HU' }] }],
    address: { city: '杭州市', line: ['解放路 88 号'] },
    managingOrganization: { reference: 'Organization/org-1' },
    partOf: { reference: 'Location/building-1' },
  },
  task,
  consent,
  auditEvent,
  provenance,
  {
    resourceType: 'Subscription',
    id: 'sub-1',
    status: 'active',
    reason: 'Notify the regional platform of new lab results',
    criteria: 'Observation?category=laboratory',
    contact: [{ system: 'email', value: 'ops@example.org' }],
    channel: { type: 'rest-hook', endpoint: 'https://platform.example.org/hooks/lab', payload: 'application/fhir+json' },
  },
  {
    resourceType: 'DocumentReference',
    id: 'doc-1',
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:2.25.100000000000000000000000000000000004' },
    status: 'current',
    type: { coding: [{ system: LOINC, code: '18842-5', display: 'Discharge summary' }] },
    category: [{ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category', code: 'clinical-note' }] }],
    subject: { reference: 'Patient/p-1' },
    date: '2024-03-07T11:00:00+08:00',
    author: [{ reference: 'Practitioner/pr-1' }],
    custodian: { reference: 'Organization/org-1' },
    description: '出院小结',
    relatesTo: [{ code: 'replaces', target: { reference: 'DocumentReference/doc-0' } }],
    content: [{ attachment: { contentType: 'application/pdf', language: 'zh-CN', url: 'Binary/bin-1' }, format: { system: 'http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem', code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient' } }],
    context: { encounter: [{ reference: 'Encounter/e-1' }], period: { start: '2024-03-05', end: '2024-03-07' }, related: [{ reference: 'Observation/obs-1' }] },
  },
].map((r) => JSON.parse(JSON.stringify(r)) as R); // drop the undefined keys

// ---------------------------------------------------------------------------------------------
// helpers

const byJson = (a: unknown, b: unknown): number => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0);
const sorted = <T>(xs: T[]): T[] => [...xs].sort(byJson);

function rowsFor(resource: R): IndexRows {
  return extractIndexRows(resource);
}

/**
 * Whether a row is one a search on `p` (`<Type>.<code>` or its `:text` key) reads: its own
 * rows, or those of the parameters it shares them with (search-params.ts, shareRows).
 */
function readBy(p: string): (row: { p: string; targetType?: string }) => boolean {
  const [key, suffix] = p.split(':');
  const dot = key.indexOf('.');
  const rows = getParam(key.slice(0, dot), key.slice(dot + 1))?.rows ?? { keys: [key] };
  const keys = new Set(rows.keys.map((k) => (suffix ? `${k}:${suffix}` : k)));
  return (row) => keys.has(row.p) && (!rows.targetType || row.targetType === rows.targetType);
}

/** Token rows of one parameter as sorted [system, code] pairs. */
function tokens(rows: IndexRows, p: string): [string | null, string][] {
  return sorted(rows.token.filter(readBy(p)).map((r) => [r.system, r.code] as [string | null, string]));
}

/** Normalized string values of one parameter (or its `:text` key), sorted. */
function strings(rows: IndexRows, p: string): string[] {
  return rows.string.filter(readBy(p)).map((r) => r.value).sort();
}

function dates(rows: IndexRows, p: string): [string, string][] {
  return sorted(rows.date.filter(readBy(p)).map((r) => [r.lo, r.hi] as [string, string]));
}

function refs(rows: IndexRows, p: string): string[] {
  return rows.reference.filter(readBy(p)).map((r) => `${r.targetType}/${r.targetId}`).sort();
}

function numbers(rows: IndexRows, p: string): [number, string | null, string | null][] {
  return rows.number.filter(readBy(p)).map((r) => [r.value, r.system, r.code] as [number, string | null, string | null]).sort((a, b) => a[0] - b[0]);
}

/** Every `p` that has at least one row. */
function keys(rows: IndexRows): string[] {
  return [...new Set([...rows.token, ...rows.string, ...rows.date, ...rows.reference, ...rows.number].map((r) => r.p))].sort();
}

/** Rows in a canonical order, for comparing two extractions. */
function canonical(rows: IndexRows): IndexRows {
  return { token: sorted(rows.token), string: sorted(rows.string), date: sorted(rows.date), reference: sorted(rows.reference), number: sorted(rows.number) };
}

// ---------------------------------------------------------------------------------------------

describe('search parameter registry', () => {
  it('answers a parameter that indexes what others do from their rows: a restriction by target type, a union, a twin', () => {
    expect(getParam('Observation', 'patient')!.rows).toEqual({ keys: ['Observation.subject'], targetType: 'Patient' });
    expect(getParam('Observation', 'subject')!.rows).toEqual({ keys: ['Observation.subject'] });
    expect([...getParam('Observation', 'combo-code')!.rows.keys].sort()).toEqual(['Observation.code', 'Observation.component-code']);
    expect([...getParam('Observation', 'combo-value-quantity')!.rows.keys].sort()).toEqual(['Observation.component-value-quantity', 'Observation.value-quantity']);
    expect(getParam('Patient', 'phonetic')!.rows).toEqual({ keys: ['Patient.name'] });
    expect(getParam('Encounter', 'practitioner')!.rows).toEqual({ keys: ['Encounter.participant'], targetType: 'Practitioner' });
    // A union of restrictions to one type: the Patients among the agents and among the entities.
    expect(getParam('AuditEvent', 'patient')!.rows).toEqual({ keys: ['AuditEvent.agent', 'AuditEvent.entity'], targetType: 'Patient' });
    // Not a restriction of `telecom` by target: phone keeps rows of its own.
    expect(getParam('Patient', 'phone')!.rows).toEqual({ keys: ['Patient.phone'] });
    // A shared parameter's rows are never stored under its own key.
    const shared = new Set(['Observation', 'Patient', 'Encounter', 'AuditEvent'].flatMap((t) => getParams(t).filter((d) => d.rows.keys[0] !== d.key || d.rows.targetType).map((d) => d.key)));
    expect(shared.size).toBeGreaterThanOrEqual(8);
    for (const resource of [observation, patient, auditEvent]) expect(keys(rowsFor(resource)).filter((k) => shared.has(k.replace(/:text$/, '')))).toEqual([]);
  });

  it('knows concrete resource types only', () => {
    expect(isKnownResourceType('Patient')).toBe(true);
    expect(isKnownResourceType('Observation')).toBe(true);
    expect(isKnownResourceType('Resource')).toBe(false);
    expect(isKnownResourceType('DomainResource')).toBe(false);
    expect(isKnownResourceType('patient')).toBe(false);
    expect(isKnownResourceType('Nonsense')).toBe(false);
  });

  it('keeps only the terms of a multi-type expression for the type', () => {
    const patient = getParam('Observation', 'patient');
    expect(patient).toMatchObject({ code: 'patient', key: 'Observation.patient', type: 'reference', resourceType: 'Observation', expression: 'Observation.subject.where(resolve() is Patient)' });
    expect(patient?.targets).toContain('Patient');
    expect(getParam('Condition', 'code')?.expression).toBe('Condition.code');
    expect(getParam('Observation', 'value-quantity')?.expression).toBe('(Observation.value as Quantity) | (Observation.value as SampledData)');
    // `Person.` must not match `RelatedPerson.`
    expect(getParam('Person', 'name')?.expression).toBe('Person.name');
    expect(getParam('Observation', 'code')?.targets).toEqual([]);
  });

  it('rewrites the indexed Resource-level parameters and leaves out the others', () => {
    expect(getParam('Patient', '_tag')).toMatchObject({ key: 'Patient._tag', type: 'token', expression: 'Patient.meta.tag' });
    expect(getParam('Patient', '_security')?.expression).toBe('Patient.meta.security');
    expect(getParam('Patient', '_profile')).toMatchObject({ type: 'uri', expression: 'Patient.meta.profile' });
    expect(getParam('Patient', '_source')?.expression).toBe('Patient.meta.source');
    for (const code of ['_id', '_lastUpdated', '_text', '_content', '_list', '_has', '_query', '_filter']) expect(getParam('Patient', code)).toBeUndefined();
  });

  it('leaves out composite and special parameters', () => {
    expect(getParam('Observation', 'code-value-quantity')).toBeUndefined(); // composite
    expect(getParam('Location', 'near')).toBeUndefined(); // special
    expect(getParams('Observation').every((p) => ['token', 'string', 'date', 'reference', 'quantity', 'number', 'uri'].includes(p.type))).toBe(true);
  });

  it('roots relative R4 expressions (InsurancePlan name | alias) at their single base', () => {
    expect(getParam('InsurancePlan', 'name')?.expression).toBe('InsurancePlan.name | InsurancePlan.alias');
  });

  it('splits unions only at the top level', () => {
    expect(splitUnion("(A.b as C) | A.d.where(x = 'p|q') | (A.e | A.f).g")).toEqual(['(A.b as C)', "A.d.where(x = 'p|q')", '(A.e | A.f).g']);
  });

  it('is empty for unknown types', () => {
    expect(getParams('Nonsense')).toEqual([]);
    expect(getParam('Nonsense', 'code')).toBeUndefined();
  });
});

describe('parseDateRange', () => {
  it.each([
    ['2024', '2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['2024-03', '2024-03-01T00:00:00.000Z', '2024-04-01T00:00:00.000Z'],
    ['2024-12', '2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['2024-12-31', '2024-12-31T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['2024-03-05T10:00+08:00', '2024-03-05T02:00:00.000Z', '2024-03-05T02:01:00.000Z'],
    ['2024-03-05T10:00:05Z', '2024-03-05T10:00:05.000Z', '2024-03-05T10:00:06.000Z'],
    ['2024-03-05T10:00:05.123-05:30', '2024-03-05T15:30:05.123Z', '2024-03-05T15:30:05.124Z'],
    ['2024-03-05T10:00:05.5Z', '2024-03-05T10:00:05.500Z', '2024-03-05T10:00:05.600Z'],
    ['2024-03-05T10:00:05.123456Z', '2024-03-05T10:00:05.123Z', '2024-03-05T10:00:05.124Z'],
    ['2024-03-05T10:00:05', '2024-03-05T10:00:05.000Z', '2024-03-05T10:00:06.000Z'], // no zone: UTC
    ['2024-01-01T00:30:00+01:00', '2023-12-31T23:30:00.000Z', '2023-12-31T23:30:01.000Z'],
    ['0099-06-01', '0099-06-01T00:00:00.000Z', '0099-06-02T00:00:00.000Z'],
    ['9999-12-31', '9999-12-31T00:00:00.000Z', 'infinity'],
  ])('%s -> [%s, %s)', (value, lo, hi) => {
    expect(parseDateRange(value)).toEqual({ lo, hi });
  });

  it.each(['', 'abc', '2024-13-01', '2024-00-10', '2024-02-30', '2023-02-29', '2024-04-31', '2024-3-5', '0000', '20240305', '2024-03-05T24:00Z', '2024-03-05T10:60Z', '2024-03-05T10:00:60Z', '2024-03-05T10Z', '2024-03-05T10:00+8:00', '2024-03-05T10:00+15:00', '2024-03-05T10:00:00.Z', '2024-03-05 10:00', ' 2024'])(
    'rejects %j',
    (value) => {
      expect(parseDateRange(value)).toBeUndefined();
    },
  );

  it('never throws on non-strings', () => {
    expect(parseDateRange(undefined as unknown as string)).toBeUndefined();
    expect(parseDateRange(20240305 as unknown as string)).toBeUndefined();
  });
});

describe('parseReference', () => {
  it('reads relative, versioned and absolute literal references', () => {
    expect(parseReference('Patient/p-1')).toEqual({ type: 'Patient', id: 'p-1' });
    expect(parseReference('Patient/p-1/_history/3')).toEqual({ type: 'Patient', id: 'p-1' });
    expect(parseReference('https://fhir.example.org/r4/Patient/p-1')).toEqual({ type: 'Patient', id: 'p-1' });
    expect(parseReference('http://fhir.example.org/Patient/p-1/_history/2')).toEqual({ type: 'Patient', id: 'p-1' });
  });

  it('skips contained, urn:uuid, conditional, unknown-type and malformed references', () => {
    for (const r of ['#c1', 'urn:uuid:7f1c2a1e-0000-4000-8000-000000000001', 'Patient?identifier=x|1', 'Foo/1', 'Patient/', 'Patient/a b', 'x/Patient/1', 'Patient/1/extra', '']) {
      expect(parseReference(r)).toBeUndefined();
    }
  });
});

describe('extractIndexRows', () => {
  it('Observation: codes, display text, value, time, references, meta', () => {
    const rows = rowsFor(observation);
    expect(tokens(rows, 'Observation.code')).toEqual([['http://loinc.org', '718-7'], ['urn:local:lis', 'HGB']]);
    expect(strings(rows, 'Observation.code:text')).toEqual(['hemoglobin [mass/volume] in blood', '血红蛋白']);
    expect(tokens(rows, 'Observation.combo-code')).toEqual(tokens(rows, 'Observation.code'));
    expect(tokens(rows, 'Observation.category')).toEqual([[OBS_CAT, 'laboratory']]);
    expect(strings(rows, 'Observation.category:text')).toEqual(['laboratory']);
    expect(tokens(rows, 'Observation.status')).toEqual([[null, 'final']]);
    expect(tokens(rows, 'Observation.identifier')).toEqual([['urn:oid:2.16.156.10011.1.11.1.2', 'LIS-2024-000123']]);
    expect(dates(rows, 'Observation.date')).toEqual([['2024-03-05T02:00:00.000Z', '2024-03-05T02:00:01.000Z']]);
    expect(numbers(rows, 'Observation.value-quantity')).toEqual([[135, UCUM, 'g/L']]);
    expect(numbers(rows, 'Observation.combo-value-quantity')).toEqual([[135, UCUM, 'g/L']]);
    expect(refs(rows, 'Observation.subject')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Observation.patient')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Observation.encounter')).toEqual(['Encounter/e-1']);
    expect(refs(rows, 'Observation.performer')).toEqual(['Organization/org-1', 'Practitioner/pr-1']);
    expect(tokens(rows, 'Observation._tag')).toEqual([[SOURCE, 'hospital-a']]);
    expect(strings(rows, 'Observation._tag:text')).toEqual(['hospital a']);
    expect(tokens(rows, 'Observation._security')).toEqual([[CONF, 'N']]);
    expect(tokens(rows, 'Observation._profile')).toEqual([[null, 'http://example.org/fhir/StructureDefinition/lab-result']]);
    expect(tokens(rows, 'Observation._source')).toEqual([[null, 'urn:consortium:lis-a']]);
    expect(keys(rows)).toEqual(
      [
        'Observation._profile', 'Observation._security', 'Observation._source', 'Observation._tag', 'Observation._tag:text',
        'Observation.category', 'Observation.category:text', 'Observation.code', 'Observation.code:text', 'Observation.date',
        'Observation.encounter', 'Observation.identifier', 'Observation.performer', 'Observation.status', 'Observation.subject',
        'Observation.value-quantity',
      ].sort(),
    );
    // `p` of every row is <ResourceType>.<code>[:text]
    expect(rows.string.every((r) => /^Observation\.[a-z_-]+(:text)?$/.test(r.p))).toBe(true);
  });

  it('Observation: value[x] choices are told apart by the casts', () => {
    const bp = rowsFor(fixtures.find((f) => f.id === 'obs-2')!);
    expect(numbers(bp, 'Observation.component-value-quantity')).toEqual([[82, UCUM, 'mm[Hg]'], [128, UCUM, 'mm[Hg]']]);
    expect(numbers(bp, 'Observation.value-quantity')).toEqual([]);
    expect(tokens(bp, 'Observation.component-code')).toEqual([[LOINC, '8462-4'], [LOINC, '8480-6']]);
    expect(tokens(bp, 'Observation.combo-code')).toEqual([[LOINC, '8462-4'], [LOINC, '8480-6'], [LOINC, '85354-9']]);
    expect(dates(bp, 'Observation.date')).toEqual([['2024-03-05T02:00:00.000Z', 'infinity']]);

    const blood = rowsFor(fixtures.find((f) => f.id === 'obs-3')!);
    expect(tokens(blood, 'Observation.value-concept')).toEqual([[SNOMED, '112144000']]);
    expect(strings(blood, 'Observation.value-concept:text')).toEqual(['a 型', 'blood group a']);
    expect(strings(blood, 'Observation.value-string')).toEqual(['a 型']); // (value as CodeableConcept).text
    expect(numbers(blood, 'Observation.value-quantity')).toEqual([]);
    expect(refs(blood, 'Observation.subject')).toEqual(['Group/g-1']);
    expect(refs(blood, 'Observation.patient')).toEqual([]); // where(resolve() is Patient)
    expect(refs(blood, 'Observation.focus')).toEqual(['Specimen/sp-1']);

    const note = rowsFor(fixtures.find((f) => f.id === 'obs-4')!);
    expect(strings(note, 'Observation.value-string')).toEqual(['阴性 negative']);
    expect(note.string.find((r) => r.p === 'Observation.value-string')?.raw).toBe('阴性 Negative');
    expect(strings(note, 'Observation.code:text')).toEqual(['备注']);
    expect(tokens(note, 'Observation.code')).toEqual([]);
    expect(dates(note, 'Observation.date')).toEqual([['2024-03-05T02:00:00.500Z', '2024-03-05T02:00:00.600Z']]);
  });

  it('Patient: Chinese and English names, WS/T 500 identifiers, telecom, birth date, address', () => {
    const rows = rowsFor(patient);
    expect(strings(rows, 'Patient.name')).toEqual(['mr.', 'wang', 'wangxiaoming', 'xiaoming', 'xiaoming wang', '小明', '小明 王', '王', '王小明'].sort());
    expect(strings(rows, 'Patient.phonetic')).toEqual(strings(rows, 'Patient.name'));
    expect(strings(rows, 'Patient.family')).toEqual(['wang', '王']);
    expect(strings(rows, 'Patient.given')).toEqual(['xiaoming', '小明']);
    expect(rows.string.filter((r) => r.p === 'Patient.name' && r.value === 'wang').map((r) => r.raw)).toEqual(['Wang']);
    expect(tokens(rows, 'Patient.identifier')).toEqual([[MRN, 'MRN-0001'], [ID_CARD, '110101199003070000']]);
    expect(strings(rows, 'Patient.identifier:text')).toEqual(['居民身份证']);
    expect(tokens(rows, 'Patient.telecom')).toEqual([['phone', '13800000000']]);
    expect(tokens(rows, 'Patient.phone')).toEqual([['phone', '13800000000']]);
    expect(tokens(rows, 'Patient.email')).toEqual([]);
    expect(tokens(rows, 'Patient.gender')).toEqual([[null, 'male']]);
    expect(tokens(rows, 'Patient.active')).toEqual([[null, 'true']]);
    expect(tokens(rows, 'Patient.deceased')).toEqual([[null, 'false']]);
    expect(dates(rows, 'Patient.birthdate')).toEqual([['1990-03-07T00:00:00.000Z', '1990-03-08T00:00:00.000Z']]);
    expect(dates(rows, 'Patient.death-date')).toEqual([]);
    expect(strings(rows, 'Patient.address')).toEqual(['310012', 'cn', '文三路 100 号', '杭州市', '浙江省', '西湖区'].sort());
    expect(strings(rows, 'Patient.address-city')).toEqual(['杭州市']);
    expect(strings(rows, 'Patient.address-state')).toEqual(['浙江省']);
    expect(strings(rows, 'Patient.address-postalcode')).toEqual(['310012']);
    expect(strings(rows, 'Patient.address-country')).toEqual(['cn']);
    expect(tokens(rows, 'Patient.address-use')).toEqual([[null, 'home']]);
    expect(refs(rows, 'Patient.organization')).toEqual(['Organization/org-1']);
  });

  it('Patient: accents, several given names, email vs phone, deceased', () => {
    const rows = rowsFor(fixtures.find((f) => f.id === 'p-2')!);
    expect(strings(rows, 'Patient.name')).toEqual(['jose', 'jose maria nunez', 'jr.', 'maria', 'nunez', 'nunezjosemaria'].sort());
    expect(tokens(rows, 'Patient.email')).toEqual([['email', 'li.hua@example.org']]);
    expect(tokens(rows, 'Patient.phone')).toEqual([['phone', '057100000000']]);
    expect(tokens(rows, 'Patient.deceased')).toEqual([[null, 'true']]);
    expect(dates(rows, 'Patient.death-date')).toEqual([['2024-02-01T03:00:00.000Z', '2024-02-01T03:00:01.000Z']]);
    const p3 = rowsFor(fixtures.find((f) => f.id === 'p-3')!);
    expect(strings(p3, 'Patient.address')).toEqual(['浙江省杭州市西湖区文三路 100 号']);
    expect(tokens(p3, 'Patient.deceased')).toEqual([[null, 'false']]);
  });

  it('Encounter: period, open-ended location period, class Coding, length', () => {
    const rows = rowsFor(encounter);
    expect(dates(rows, 'Encounter.date')).toEqual([['2024-03-05T00:30:00.000Z', '2024-03-07T02:00:01.000Z']]);
    expect(dates(rows, 'Encounter.location-period')).toEqual([['2024-03-05T00:00:00.000Z', 'infinity']]);
    expect(tokens(rows, 'Encounter.class')).toEqual([['http://terminology.hl7.org/CodeSystem/v3-ActCode', 'IMP']]);
    expect(strings(rows, 'Encounter.class:text')).toEqual(['inpatient encounter']);
    expect(tokens(rows, 'Encounter.type')).toEqual([[SNOMED, '183452005']]);
    expect(numbers(rows, 'Encounter.length')).toEqual([[2, UCUM, 'd']]);
    expect(refs(rows, 'Encounter.patient')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Encounter.participant')).toEqual(['Practitioner/pr-1']);
    expect(refs(rows, 'Encounter.practitioner')).toEqual(['Practitioner/pr-1']);
    expect(refs(rows, 'Encounter.location')).toEqual(['Location/ward-3']);
    expect(refs(rows, 'Encounter.service-provider')).toEqual(['Organization/org-1']);
    expect(tokens(rows, 'Encounter.status')).toEqual([[null, 'finished']]);
  });

  it('Condition: ICD-10 code, onset[x] by type', () => {
    const rows = rowsFor(condition);
    expect(tokens(rows, 'Condition.code')).toEqual([[ICD10, 'E11.9']]);
    expect(strings(rows, 'Condition.code:text')).toEqual(['2型糖尿病', 'type 2 diabetes mellitus without complications']);
    expect(tokens(rows, 'Condition.clinical-status')).toEqual([['http://terminology.hl7.org/CodeSystem/condition-clinical', 'active']]);
    expect(tokens(rows, 'Condition.verification-status')).toEqual([['http://terminology.hl7.org/CodeSystem/condition-ver-status', 'confirmed']]);
    expect(dates(rows, 'Condition.onset-date')).toEqual([['2019-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z']]);
    expect(dates(rows, 'Condition.recorded-date')).toEqual([['2024-03-05T00:00:00.000Z', '2024-03-06T00:00:00.000Z']]);
    expect(numbers(rows, 'Condition.onset-age')).toEqual([]);
    expect(refs(rows, 'Condition.patient')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Condition.asserter')).toEqual(['Practitioner/pr-1']);

    const aged = rowsFor(fixtures.find((f) => f.id === 'cond-2')!);
    expect(numbers(aged, 'Condition.onset-age')).toEqual([[52, UCUM, 'a']]);
    expect(dates(aged, 'Condition.onset-date')).toEqual([]);
    expect(strings(aged, 'Condition.abatement-string')).toEqual(['resolved after treatment']);
    const ranged = rowsFor(fixtures.find((f) => f.id === 'cond-3')!);
    expect(dates(ranged, 'Condition.onset-date')).toEqual([['2019-05-01T00:00:00.000Z', '2019-07-01T00:00:00.000Z']]);
    expect(numbers(ranged, 'Condition.abatement-age')).toEqual([[60, null, 'a']]);
  });

  it('MedicationRequest: medication[x] as code or reference, dosage timing events', () => {
    const rows = rowsFor(medicationRequest);
    expect(tokens(rows, 'MedicationRequest.code')).toEqual([['urn:oid:2.16.156.10011.2.3.1', 'X-A10BA02']]);
    expect(strings(rows, 'MedicationRequest.code:text')).toEqual(['二甲双胍片']);
    expect(refs(rows, 'MedicationRequest.medication')).toEqual([]);
    expect(tokens(rows, 'MedicationRequest.status')).toEqual([[null, 'active']]);
    expect(tokens(rows, 'MedicationRequest.intent')).toEqual([[null, 'order']]);
    expect(dates(rows, 'MedicationRequest.authoredon')).toEqual([['2024-03-05T01:15:00.000Z', '2024-03-05T01:15:01.000Z']]);
    expect(dates(rows, 'MedicationRequest.date')).toEqual([
      ['2024-03-05T00:00:00.000Z', '2024-03-05T00:00:01.000Z'],
      ['2024-03-05T12:00:00.000Z', '2024-03-05T12:00:01.000Z'],
    ]);
    expect(refs(rows, 'MedicationRequest.requester')).toEqual(['Practitioner/pr-1']);
    expect(refs(rows, 'MedicationRequest.patient')).toEqual(['Patient/p-1']);

    const byRef = rowsFor(fixtures.find((f) => f.id === 'mr-2')!);
    expect(refs(byRef, 'MedicationRequest.medication')).toEqual(['Medication/med-1']);
    expect(tokens(byRef, 'MedicationRequest.code')).toEqual([]);
  });

  it('DiagnosticReport: result references (contained ones skipped), effective period, issued', () => {
    const rows = rowsFor(diagnosticReport);
    expect(refs(rows, 'DiagnosticReport.result')).toEqual(['Observation/obs-1', 'Observation/obs-2']);
    expect(tokens(rows, 'DiagnosticReport.code')).toEqual([[LOINC, '58410-2']]);
    expect(tokens(rows, 'DiagnosticReport.category')).toEqual([['http://terminology.hl7.org/CodeSystem/v2-0074', 'HM']]);
    expect(tokens(rows, 'DiagnosticReport.conclusion')).toEqual([[SNOMED, '281302008']]);
    expect(dates(rows, 'DiagnosticReport.date')).toEqual([['2024-03-05T01:00:00.000Z', '2024-03-05T02:00:01.000Z']]);
    expect(dates(rows, 'DiagnosticReport.issued')).toEqual([['2024-03-05T03:45:00.000Z', '2024-03-05T03:45:00.001Z']]);
    expect(refs(rows, 'DiagnosticReport.performer')).toEqual(['Organization/org-1']);
  });

  it('Task: owner, for -> patient and subject, text-only business status', () => {
    const rows = rowsFor(task);
    expect(refs(rows, 'Task.owner')).toEqual(['PractitionerRole/prr-1']);
    expect(refs(rows, 'Task.patient')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Task.subject')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Task.requester')).toEqual(['Organization/org-1']);
    expect(refs(rows, 'Task.focus')).toEqual(['ServiceRequest/sr-1']);
    expect(tokens(rows, 'Task.business-status')).toEqual([]);
    expect(strings(rows, 'Task.business-status:text')).toEqual(['awaiting review']);
    expect(tokens(rows, 'Task.status')).toEqual([[null, 'requested']]);
    expect(tokens(rows, 'Task.priority')).toEqual([[null, 'urgent']]);
    expect(dates(rows, 'Task.period')).toEqual([['2024-03-06T00:00:00.000Z', 'infinity']]);
    expect(dates(rows, 'Task.modified')).toEqual([['2024-03-05T01:30:00.000Z', '2024-03-05T01:30:01.000Z']]);
  });

  it('Consent: provision actors, data, purpose, period and source[x]', () => {
    const rows = rowsFor(consent);
    expect(refs(rows, 'Consent.patient')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Consent.consentor')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Consent.organization')).toEqual(['Organization/org-1']);
    expect(refs(rows, 'Consent.actor')).toEqual(['Organization/org-2']);
    expect(refs(rows, 'Consent.data')).toEqual(['Encounter/e-1']);
    expect(refs(rows, 'Consent.source-reference')).toEqual(['DocumentReference/doc-1']);
    expect(tokens(rows, 'Consent.purpose')).toEqual([['http://terminology.hl7.org/CodeSystem/v3-ActReason', 'TREAT']]);
    expect(tokens(rows, 'Consent.action')).toEqual([['http://terminology.hl7.org/CodeSystem/consentaction', 'access']]);
    expect(tokens(rows, 'Consent.scope')).toEqual([['http://terminology.hl7.org/CodeSystem/consentscope', 'patient-privacy']]);
    expect(tokens(rows, 'Consent.category')).toEqual([[LOINC, '59284-0']]);
    expect(dates(rows, 'Consent.period')).toEqual([['2024-01-10T00:00:00.000Z', '2025-01-10T00:00:00.000Z']]);
    expect(dates(rows, 'Consent.date')).toEqual([['2024-01-10T00:00:00.000Z', '2024-01-11T00:00:00.000Z']]);
  });

  it('AuditEvent: agent and entity, patient from either', () => {
    const rows = rowsFor(auditEvent);
    expect(tokens(rows, 'AuditEvent.type')).toEqual([['http://dicom.nema.org/resources/ontology/DCM', '110110']]);
    expect(strings(rows, 'AuditEvent.type:text')).toEqual(['patient record']);
    expect(tokens(rows, 'AuditEvent.subtype')).toEqual([['http://hl7.org/fhir/restful-interaction', 'read']]);
    expect(tokens(rows, 'AuditEvent.action')).toEqual([[null, 'R']]);
    expect(tokens(rows, 'AuditEvent.outcome')).toEqual([[null, '0']]);
    expect(dates(rows, 'AuditEvent.date')).toEqual([['2024-03-05T02:15:30.123Z', '2024-03-05T02:15:30.124Z']]);
    expect(refs(rows, 'AuditEvent.agent')).toEqual(['Practitioner/pr-1']);
    expect(refs(rows, 'AuditEvent.entity')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'AuditEvent.patient')).toEqual(['Patient/p-1']);
    // A patient reading their own record is an agent: found by patient too, beside the entity.
    const own = rowsFor({ ...auditEvent, agent: [...(auditEvent.agent as object[]), { who: { reference: 'Patient/p-2' }, requestor: false }] } as R);
    expect(refs(own, 'AuditEvent.patient')).toEqual(['Patient/p-1', 'Patient/p-2']);
    expect(refs(rows, 'AuditEvent.source')).toEqual(['Device/gw-1']);
    expect(strings(rows, 'AuditEvent.agent-name')).toEqual(['张医生']);
    expect(strings(rows, 'AuditEvent.address')).toEqual(['10.0.0.12']);
    expect(strings(rows, 'AuditEvent.entity-name')).toEqual(['patient record']);
    expect(tokens(rows, 'AuditEvent.altid')).toEqual([[null, 'emp-0042']]);
    expect(tokens(rows, 'AuditEvent.site')).toEqual([[null, 'hospital-a']]);
    expect(tokens(rows, 'AuditEvent.agent-role')).toEqual([['http://terminology.hl7.org/CodeSystem/v3-RoleClass', 'PROV']]);
    expect(tokens(rows, 'AuditEvent.entity-type')).toEqual([['http://terminology.hl7.org/CodeSystem/audit-entity-type', '1']]);
  });

  it('Provenance: targets, patient among targets, occurred[x] as when', () => {
    const rows = rowsFor(provenance);
    expect(refs(rows, 'Provenance.target')).toEqual(['Observation/obs-1', 'Patient/p-1']);
    expect(refs(rows, 'Provenance.patient')).toEqual(['Patient/p-1']);
    expect(refs(rows, 'Provenance.agent')).toEqual(['Practitioner/pr-1']);
    expect(refs(rows, 'Provenance.entity')).toEqual(['DocumentReference/doc-1']);
    expect(refs(rows, 'Provenance.location')).toEqual(['Location/ward-3']);
    expect(tokens(rows, 'Provenance.agent-type')).toEqual([['http://terminology.hl7.org/CodeSystem/provenance-participant-type', 'author']]);
    expect(tokens(rows, 'Provenance.signature-type')).toEqual([['urn:iso-astm:E1762-95:2013', '1.2.840.10065.1.12.1.1']]);
    expect(dates(rows, 'Provenance.when')).toEqual([['2024-03-05T02:00:00.000Z', '2024-03-05T02:00:01.000Z']]);
    expect(dates(rows, 'Provenance.recorded')).toEqual([['2024-03-05T02:05:00.000Z', '2024-03-05T02:05:00.001Z']]);
  });

  it('references: absolute URLs and history are read, urn:uuid and canonical skipped', () => {
    const rows = rowsFor({
      resourceType: 'Observation',
      id: 'obs-refs',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: 'https://fhir.example.org/r4/Patient/p-9/_history/4' },
      encounter: { reference: 'urn:uuid:7f1c2a1e-0000-4000-8000-000000000001' },
      basedOn: [{ reference: 'ServiceRequest/sr-1/_history/1' }, { identifier: { system: 'urn:x', value: '1' } }],
    });
    expect(refs(rows, 'Observation.subject')).toEqual(['Patient/p-9']);
    expect(refs(rows, 'Observation.patient')).toEqual(['Patient/p-9']);
    expect(refs(rows, 'Observation.encounter')).toEqual([]);
    expect(refs(rows, 'Observation.based-on')).toEqual(['ServiceRequest/sr-1']);
    const sr = rowsFor(fixtures.find((f) => f.id === 'sr-1')!);
    expect(refs(sr, 'ServiceRequest.instantiates-canonical')).toEqual([]);
    expect(tokens(sr, 'ServiceRequest.instantiates-uri')).toEqual([[null, 'http://example.org/protocols/cbc']]);
  });

  it('dedupes identical rows within a parameter and skips empty and invalid values', () => {
    const rows = rowsFor({
      resourceType: 'Observation',
      id: 'obs-dup',
      status: 'final',
      category: [
        { coding: [{ system: OBS_CAT, code: 'laboratory', display: 'Laboratory' }] },
        { coding: [{ system: OBS_CAT, code: 'laboratory', display: 'Laboratory' }, { system: OBS_CAT, code: '' }, { display: 'No code' }] },
      ],
      code: { coding: [{ code: 'no-system' }] },
      effectiveDateTime: '2024-02-30',
      performer: [{ reference: 'Practitioner/pr-1' }, { reference: 'Practitioner/pr-1' }],
    });
    expect(tokens(rows, 'Observation.category')).toEqual([[OBS_CAT, 'laboratory']]);
    expect(strings(rows, 'Observation.category:text')).toEqual(['laboratory', 'no code']);
    expect(tokens(rows, 'Observation.code')).toEqual([[null, 'no-system']]);
    expect(dates(rows, 'Observation.date')).toEqual([]);
    expect(refs(rows, 'Observation.performer')).toEqual(['Practitioner/pr-1']);
  });

  it('never throws on malformed values, in either mode', () => {
    const bad = {
      resourceType: 'Patient',
      id: 'bad',
      name: [null, 'not-a-name', { family: 7, given: 'not-an-array' }],
      identifier: { system: 1 },
      telecom: [{ system: 'phone' }, 3],
      birthDate: 19900307,
      address: [{ line: [null, ''], city: {} }],
      deceasedDateTime: 'yesterday',
      managingOrganization: 'Organization/org-1',
      meta: { tag: 'x' },
    };
    for (const forceFallback of [false, true]) {
      expect(() => extractIndexRows(bad, { forceFallback })).not.toThrow();
    }
    expect(canonical(extractIndexRows(bad))).toEqual(canonical(extractIndexRows(bad, { forceFallback: true })));
  });

  it('returns no rows for unknown resource types', () => {
    expect(keys(extractIndexRows({ resourceType: 'Nonsense', id: 'x' }))).toEqual([]);
  });
});

describe('compiled extraction equals the medplum FHIRPath fallback', () => {
  const TYPES = [
    'Patient', 'Encounter', 'Condition', 'Observation', 'DiagnosticReport', 'ImagingStudy', 'MedicationRequest', 'Medication',
    'ServiceRequest', 'Procedure', 'AllergyIntolerance', 'Organization', 'Practitioner', 'PractitionerRole', 'Location', 'Task',
    'Consent', 'AuditEvent', 'Provenance', 'Subscription', 'DocumentReference',
  ];

  it('has a fixture for every listed type', () => {
    expect([...new Set(fixtures.map((f) => f.resourceType))].sort()).toEqual([...TYPES].sort());
  });

  it.each(fixtures.map((f) => [`${f.resourceType}/${f.id}`, f] as const))('%s', (_name, resource) => {
    const compiled = extractIndexRows(resource);
    const fallback = extractIndexRows(resource, { forceFallback: true });
    expect(canonical(compiled)).toEqual(canonical(fallback));
    expect(keys(compiled).length).toBeGreaterThanOrEqual(4); // the fixture exercises several parameters
  });

  it('reports which parameters use the fallback', () => {
    const lines = TYPES.map((t) => [t, fallbackParams(t)] as const).filter(([, codes]) => codes.length > 0).map(([t, codes]) => `${t}: ${codes.join(', ')}`);
    const total = TYPES.reduce((n, t) => n + getParams(t).length, 0);
    console.log(`FHIRPath fallback for ${lines.length ? lines.join('; ') : 'none'} (of ${total} parameters on the listed types)`);
  });
});
