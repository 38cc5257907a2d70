import type { Bundle, Resource } from '@medplum/fhirtypes';

/** A small synthetic consortium slice for store tests. No real people. */
export const ID_SYSTEM = 'urn:oid:2.16.156.10011.1.3';
export const MRN_CITY = 'urn:oid:2.16.156.10011.1.11.1';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';

export function put(resource: Resource & { id: string }): NonNullable<Bundle['entry']>[number] {
  return { fullUrl: `${resource.resourceType}/${resource.id}`, resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } };
}

export function transaction(resources: (Resource & { id: string })[]): Bundle {
  return { resourceType: 'Bundle', type: 'transaction', entry: resources.map(put) };
}

export const patients: (Resource & { id: string })[] = [
  {
    resourceType: 'Patient',
    id: 'p-wang',
    identifier: [
      { system: MRN_CITY, value: 'MRN001' },
      { system: ID_SYSTEM, value: '110101199003074514' },
    ],
    name: [{ text: '王小明', family: '王', given: ['小明'] }],
    gender: 'male',
    birthDate: '1990-03-07',
    telecom: [{ system: 'phone', value: '13800138000' }],
    address: [{ city: '杭州市', district: '西湖区', line: ['文三路 100 号'] }],
  },
  {
    resourceType: 'Patient',
    id: 'p-li',
    identifier: [{ system: MRN_CITY, value: 'MRN002' }],
    name: [{ text: '李华', family: '李', given: ['华'] }],
    gender: 'female',
    birthDate: '1985-11',
  },
  {
    resourceType: 'Patient',
    id: 'p-jose',
    identifier: [{ value: 'NOSYS-1' }],
    name: [{ family: 'Núñez', given: ['José'] }],
    gender: 'male',
    birthDate: '1972',
  },
  {
    resourceType: 'Patient',
    id: 'p-wide',
    identifier: [{ system: MRN_CITY, value: 'MRN004' }],
    name: [{ family: 'ＷＡＮＧ', given: ['Ｆａｎｇ'] }],
    gender: 'female',
    birthDate: '2001-01-31',
  },
];

export function labObservation(id: string, patient: string, code: string, value: number, unit: string, when: string, extra: Partial<Resource> = {}): Resource & { id: string } {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: LOINC, code, display: code === '718-7' ? 'Hemoglobin' : 'Glucose' }, { system: 'urn:local:lis', code: `L${code}` }], text: code === '718-7' ? '血红蛋白' : '葡萄糖' },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: when,
    valueQuantity: { value, unit, system: UCUM, code: unit },
    ...extra,
  } as Resource & { id: string };
}

export const observations = [
  labObservation('o1', 'p-wang', '718-7', 13.2, 'g/dL', '2024-03-01T10:00:00+08:00'),
  labObservation('o2', 'p-wang', '718-7', 11.0, 'g/dL', '2024-05-20T09:30:00+08:00'),
  labObservation('o3', 'p-wang', '2345-7', 6.1, 'mmol/L', '2023-12-31T23:30:00+08:00'),
  labObservation('o4', 'p-li', '718-7', 12.5, 'g/dL', '2024-03-15'),
  labObservation('o5', 'p-li', '2345-7', 7.8, 'mmol/L', '2025-01-02T08:00:00Z', { status: 'preliminary' } as Partial<Resource>),
];
