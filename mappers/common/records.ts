/**
 * Building blocks shared by the mappers of record-shaped sources (vendor JSON, CSV): a
 * Patient from flat demographics, numbers and dates that name their field when wrong, and a
 * prescription line. HL7 v2 has its own, field-addressed equivalents in mappers/hl7v2.
 */
import type { CodeableConcept, Identifier, MedicationRequest, Patient, Timing } from '@medplum/fhirtypes';
import { localDateTime } from '../context';
import { quantity } from '../hl7v2/units';
import { idCardIdentifier, mrnIdentifier, SYSTEMS } from '../identifiers';
import { MappingError } from '../types';
import type { ResultBuilder } from './result';

/** GB/T 2261.1 sex codes. */
const SEX: Readonly<Record<string, Patient['gender']>> = { '1': 'male', '2': 'female', '0': 'unknown', '9': 'unknown' };

export interface Demographics {
  mrn: string;
  name?: string;
  /** GB/T 2261.1 code. */
  sex?: string;
  birthDate?: string;
  idCard?: string;
  phone?: string;
  address?: string;
  insuranceCard?: string;
  healthCard?: string;
}

/** Where a value came from, for errors: a JSON path or a CSV column. */
export type At = string;

export function required(value: string | undefined, at: At): string {
  const v = value?.trim();
  if (!v) throw new MappingError(`${at} is required`, { path: at }, 'required');
  return v;
}

export function optionalNumber(value: string | number | undefined, at: At): number | undefined {
  if (value === undefined || value === null || String(value).trim() === '') return undefined;
  const n = Number(String(value).trim());
  if (!Number.isFinite(n)) throw new MappingError(`${at} '${String(value).slice(0, 20)}' is not a number`, { path: at }, 'value');
  return n;
}

/** A local date-time (`yyyy-MM-dd HH:mm:ss` or a date) as FHIR, or a MappingError naming the field. */
export function dateTimeAt(value: string | undefined, at: At, isRequired = false): string | undefined {
  if (value === undefined || value.trim() === '') {
    if (isRequired) throw new MappingError(`${at} is required`, { path: at }, 'required');
    return undefined;
  }
  const v = localDateTime(value);
  if (!v) throw new MappingError(`${at} '${value.slice(0, 25)}' is not a date (yyyy-MM-dd or yyyy-MM-dd HH:mm:ss)`, { path: at }, 'value');
  return v;
}

/**
 * The facility's Patient for `d`. `copy` marks demographics carried by a result or an order:
 * written only if the registration has not arrived yet (MapResult.createOnly).
 */
export function addPatient(out: ResultBuilder, d: Demographics, at: (field: keyof Demographics) => At, copy: boolean): string {
  const identifier: Identifier[] = [mrnIdentifier(out.ctx.source.mrnSystem, d.mrn)];
  if (d.idCard) {
    const { identifier: id, warning } = idCardIdentifier(d.idCard);
    identifier.push(id);
    if (warning) out.warn(at('idCard'), warning);
  }
  if (d.insuranceCard) identifier.push({ system: SYSTEMS.insuranceCard, value: d.insuranceCard });
  if (d.healthCard) identifier.push({ system: SYSTEMS.healthCard, value: d.healthCard });
  let gender: Patient['gender'];
  if (d.sex) {
    gender = SEX[d.sex.trim()];
    if (!gender) out.warn(at('sex'), `'${d.sex}' is not a GB/T 2261.1 sex code`);
  }
  const birthDate = d.birthDate ? dateTimeAt(d.birthDate, at('birthDate'))?.slice(0, 10) : undefined;
  const patient: Patient & { id: string } = {
    resourceType: 'Patient',
    id: out.id('patient', d.mrn),
    meta: out.meta(),
    identifier,
    ...(d.name && { name: [{ use: 'official', text: d.name }] }),
    ...(d.phone && { telecom: [{ system: 'phone', value: d.phone, use: 'mobile' }] }),
    ...(gender && { gender }),
    ...(birthDate && { birthDate }),
    ...(d.address && { address: [{ use: 'home', text: d.address }] }),
    managingOrganization: out.organization,
  };
  out.add(patient, copy);
  return `Patient/${patient.id}`;
}

/** A local code with its standard translation beside it (or counted as unmapped). */
export function localConcept(out: ResultBuilder, kind: string, code: string, display?: string): CodeableConcept {
  const system = out.localSystem(kind);
  const local = { system, code, ...(display && { display }) };
  const standard = out.ctx.terminology.translate(system, code);
  if (!standard) out.unmapped(local, kind);
  return { coding: standard ? [standard, local] : [local], ...(display && { text: display }) };
}

/** Frequency codes Chinese prescriptions use (Latin abbreviations). */
const FREQUENCY: Readonly<Record<string, Timing['repeat'] & { text: string }>> = {
  qd: { frequency: 1, period: 1, periodUnit: 'd', text: '每日一次' },
  bid: { frequency: 2, period: 1, periodUnit: 'd', text: '每日两次' },
  tid: { frequency: 3, period: 1, periodUnit: 'd', text: '每日三次' },
  qid: { frequency: 4, period: 1, periodUnit: 'd', text: '每日四次' },
  qn: { frequency: 1, period: 1, periodUnit: 'd', when: ['NIGHT'], text: '每晚一次' },
  qw: { frequency: 1, period: 1, periodUnit: 'wk', text: '每周一次' },
  q8h: { frequency: 1, period: 8, periodUnit: 'h', text: '每8小时一次' },
  q12h: { frequency: 1, period: 12, periodUnit: 'h', text: '每12小时一次' },
};

export interface PrescriptionLine {
  /** Prescription number; with the drug code, the line's local id. */
  number: string;
  patient: string;
  authoredOn?: string;
  prescriber?: string;
  drugCode: string;
  drugName?: string;
  dose?: number;
  doseUnit?: string;
  frequency?: string;
  route?: string;
  days?: number;
  quantity?: number;
  quantityUnit?: string;
  encounter?: string;
}

/** One prescription line as a MedicationRequest (drug by local code, ATC beside it where mapped). */
export function addPrescription(out: ResultBuilder, p: PrescriptionLine, frequencyAt: At): void {
  const freq = p.frequency?.trim().toLowerCase();
  const repeat = freq === undefined || freq === '' || freq === 'prn' ? undefined : FREQUENCY[freq];
  if (freq && freq !== 'prn' && !repeat) out.warn(frequencyAt, `frequency '${p.frequency}' is not known; kept as text`);
  const unknownUnit = (u: string): void => out.warn(frequencyAt, `unit '${u}' has no UCUM code; kept as text`);
  const medication = localConcept(out, 'drug', p.drugCode, p.drugName);
  const { text: timingText, ...timingRepeat } = repeat ?? { text: undefined };
  const request: MedicationRequest & { id: string } = {
    resourceType: 'MedicationRequest',
    id: out.id('medreq', `${p.number}:${p.drugCode}`),
    meta: out.meta(),
    identifier: [{ system: out.localSystem('prescription'), value: p.number }],
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: medication,
    subject: { reference: p.patient },
    ...(p.encounter && { encounter: { reference: p.encounter } }),
    ...(p.authoredOn && { authoredOn: p.authoredOn }),
    ...(p.prescriber && { requester: { display: p.prescriber } }),
    dosageInstruction: [
      {
        text: [p.drugName, p.dose !== undefined ? `${p.dose}${p.doseUnit ?? ''}` : undefined, timingText ?? p.frequency, p.route].filter(Boolean).join(' '),
        ...(repeat && { timing: { repeat: timingRepeat, code: { text: p.frequency } } }),
        ...(freq === 'prn' && { asNeededBoolean: true }),
        ...(p.route && { route: { text: p.route } }),
        ...(p.dose !== undefined && { doseAndRate: [{ doseQuantity: quantity(p.dose, { text: p.doseUnit }, unknownUnit) }] }),
      },
    ],
    ...((p.quantity !== undefined || p.days !== undefined) && {
      dispenseRequest: {
        ...(p.quantity !== undefined && { quantity: quantity(p.quantity, { text: p.quantityUnit }, unknownUnit) }),
        ...(p.days !== undefined && { expectedSupplyDuration: { value: p.days, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' } }),
      },
    }),
    performer: out.organization,
  };
  out.add(request);
}
