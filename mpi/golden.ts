/**
 * The golden record: one Patient per person, built from the facility registrations linked to
 * it. It is the index's view of the person, tagged so that clients know it and the API keeps
 * it read-only; its `link` entries (seealso) name every registration.
 */
import type { Identifier, Patient } from '@medplum/fhirtypes';
import { SYSTEMS } from '../mappers/identifiers';
import type { PersonFeatures } from './features';
import { normalizeIdNumber } from './normalize';

export const MPI_TAG = { system: 'http://consortium.example/fhir/CodeSystem/mpi', code: 'GOLDEN_RECORD', display: 'Golden record of the consortium patient index' };
/** The consortium-wide person id (主索引号), the golden record's own identifier. */
export const EMPI_SYSTEM = 'http://consortium.example/fhir/sid/empi';

export function isGolden(patient: Patient): boolean {
  return patient.meta?.tag?.some((t) => t.system === MPI_TAG.system && t.code === MPI_TAG.code) ?? false;
}

export interface Member {
  patientId: string;
  features: PersonFeatures;
}

/**
 * Survivorship: a registration whose ID number passes its checks is trusted first, then the
 * most recently updated; birth date and sex come from a valid ID number when there is one
 * (the number encodes both), else from the most trusted registration that has them; phones
 * are pooled, most trusted first.
 */
export function goldenPatient(id: string, members: Member[]): Patient {
  const trusted = [...members].sort((a, b) => trust(b.features) - trust(a.features) || (b.features.updated ?? '').localeCompare(a.features.updated ?? '') || a.patientId.localeCompare(b.patientId));
  const first = <K extends keyof PersonFeatures>(k: K): PersonFeatures[K] | undefined => trusted.find((m) => m.features[k] !== undefined)?.features[k];
  const identifier: Identifier[] = [{ use: 'official', system: EMPI_SYSTEM, value: id }];
  const idNumber = first('idNumber');
  if (idNumber) identifier.push({ use: 'official', system: SYSTEMS.idCard, value: idNumber });
  const healthCard = first('healthCard');
  if (healthCard) identifier.push({ use: 'official', system: SYSTEMS.healthCard, value: healthCard });
  const insuranceCard = first('insuranceCard');
  if (insuranceCard) identifier.push({ use: 'official', system: SYSTEMS.insuranceCard, value: insuranceCard });
  const name = first('name');
  const phones = [...new Set(trusted.flatMap((m) => m.features.phones))].slice(0, 3);
  const address = first('address');
  const fromId = idNumber ? normalizeIdNumber(idNumber) : undefined;
  const gender = fromId?.valid ? fromId.sex : first('gender');
  const birthDate = fromId?.valid ? fromId.birthDate : first('birthDate');
  return {
    resourceType: 'Patient',
    id,
    meta: { tag: [MPI_TAG] },
    identifier,
    active: true,
    ...(name && { name: [{ use: 'official', text: name }] }),
    ...(phones.length && { telecom: phones.map((value) => ({ system: 'phone' as const, value })) }),
    ...(gender && { gender }),
    ...(birthDate && { birthDate }),
    ...(address && { address: [{ text: address }] }),
    link: [...members].sort((a, b) => a.patientId.localeCompare(b.patientId)).map((m) => ({ other: { reference: `Patient/${m.patientId}` }, type: 'seealso' as const })),
  };
}

/** A golden record merged into another: kept (its id may be known) but inactive, pointing at the survivor. */
export function retiredGolden(id: string, survivor: string): Patient {
  return {
    resourceType: 'Patient',
    id,
    meta: { tag: [MPI_TAG] },
    identifier: [{ use: 'old', system: EMPI_SYSTEM, value: id }],
    active: false,
    link: [{ other: { reference: `Patient/${survivor}` }, type: 'replaced-by' }],
  };
}

function trust(f: PersonFeatures): number {
  return (f.idNumber ? 2 : 0) + (f.active ? 1 : 0);
}
