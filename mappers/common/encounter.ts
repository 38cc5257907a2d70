/** Parts of an Encounter that every record-shaped source fills alike. */
import type { Coding, EncounterParticipant } from '@medplum/fhirtypes';
import { V3_ACT_CODE, V3_PARTICIPATION_TYPE } from './systems';

/** Encounter classes (v3 ActCode) the consortium's visits have. */
export const ENCOUNTER_CLASS = {
  ambulatory: { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' },
  inpatient: { system: V3_ACT_CODE, code: 'IMP', display: 'inpatient encounter' },
  emergency: { system: V3_ACT_CODE, code: 'EMER', display: 'emergency' },
} as const satisfies Record<string, Coding>;

/** The doctor who saw the patient, known by name only. */
export function attender(name: string): EncounterParticipant {
  return { type: [{ coding: [{ system: V3_PARTICIPATION_TYPE, code: 'ATND', display: 'attender' }] }], individual: { display: name } };
}
