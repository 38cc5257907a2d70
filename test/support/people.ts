/** Facility Patients for patient index tests, from a few demographics. All synthetic. */
import type { Consent, Patient } from '@medplum/fhirtypes';
import { idCardCheckDigit } from '../../mappers/id-card';
import { mrnIdentifier, SYSTEMS } from '../../mappers/identifiers';

export interface Person {
  name?: string;
  gender?: 'male' | 'female';
  birthDate?: string;
  idNumber?: string;
  phone?: string;
  address?: string;
  healthCard?: string;
}

/** A valid 18-digit ID number for a birth date and a sequence (odd last digit: male). */
export function idNumber(birthDate: string, seq: number, region = '420102'): string {
  const first17 = `${region}${birthDate.replace(/-/g, '')}${String(seq).padStart(3, '0')}`;
  return first17 + idCardCheckDigit(first17);
}

const FACILITY_ARC: Record<string, number> = { 'city-hospital': 1, 'county-hospital': 2, 'community-centre-a': 3, 'community-centre-b': 4 };

/** Each facility's MRN system, as in fixtures/demo-sources.json. */
export function mrnSystem(facility: string): string {
  const arc = FACILITY_ARC[facility];
  if (!arc) throw new Error(`no MRN system for facility '${facility}'`);
  return `urn:oid:2.16.156.10011.1.11.${arc}`;
}

export function facilityPatient(id: string, p: Person, facility = 'city-hospital'): Patient & { id: string } {
  return {
    resourceType: 'Patient',
    id,
    identifier: [
      mrnIdentifier(mrnSystem(facility), id),
      ...(p.idNumber ? [{ system: SYSTEMS.idCard, value: p.idNumber }] : []),
      ...(p.healthCard ? [{ system: SYSTEMS.healthCard, value: p.healthCard }] : []),
    ],
    ...(p.name && { name: [{ use: 'official' as const, text: p.name }] }),
    ...(p.gender && { gender: p.gender }),
    ...(p.birthDate && { birthDate: p.birthDate }),
    ...(p.phone && { telecom: [{ system: 'phone' as const, value: p.phone }] }),
    ...(p.address && { address: [{ text: p.address }] }),
  };
}

/** A patient's opt-out of sharing, as the store's access rules read it: an active patient-privacy Consent that denies. */
export function optOutConsent(id: string, patient: string, status: Consent['status'] = 'active'): Consent & { id: string } {
  return {
    resourceType: 'Consent',
    id,
    status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patient}` },
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] },
    provision: { type: 'deny' },
  };
}
