/** DG1 to Condition, and diagnosis codes as order reasons. */
import type { CodeableConcept, Condition, EncounterDiagnosis } from '@medplum/fhirtypes';
import { codeable, sourceCodeKey } from './coding';
import type { VisitRef } from './encounter';
import type { Er7Segment } from './er7';
import type { PatientRef } from './patient';
import type { ResultBuilder } from '../common/result';
import { CONDITION_CATEGORY, CONDITION_VERIFICATION, DIAGNOSIS_ROLE } from '../common/systems';

/** DG1-6 diagnosis type (HL7 table 0052): what it says about the diagnosis and its role in the visit. */
const DIAGNOSIS_TYPE: Readonly<Record<string, { verification: string; role?: string }>> = {
  A: { verification: 'provisional', role: 'AD' },
  W: { verification: 'provisional' },
  F: { verification: 'confirmed', role: 'DD' },
};

/** DG1-3 (ICD-10 when its coding system says I10, else local and translated), else the DG1-4 text. */
export function diagnosisCode(dg1: Er7Segment, out: ResultBuilder): CodeableConcept {
  const code = codeable(dg1.field(3), 'diagnosis', out);
  if (code) return code;
  return { text: dg1.get(4) ?? dg1.need(3, 'diagnosis code') };
}

/**
 * A Condition per diagnosis, keyed by the visit (or the patient, without one) and the
 * sender's own code, so an admitting and a discharge diagnosis of the same code are one
 * Condition whose status the later message updates.
 */
export function conditionFromDg1(
  dg1: Er7Segment,
  patient: PatientRef,
  visit: VisitRef | undefined,
  out: ResultBuilder,
): { condition: Condition & { id: string }; diagnosis: EncounterDiagnosis } {
  const code = diagnosisCode(dg1, out);
  const key = `${visit ? visit.visit : `patient:${patient.mrn}`}|${sourceCodeKey(dg1.field(3)) ?? code.text}`;
  const type = DIAGNOSIS_TYPE[dg1.get(6)?.toUpperCase() ?? ''];
  const recordedDate = dg1.dateTime(5);
  const rank = dg1.number(15);
  if (rank !== undefined && (!Number.isInteger(rank) || rank < 1)) throw dg1.error(`${dg1.label(15)} priority '${rank}' is not a positive integer`, 15, undefined, 'value');
  const condition: Condition & { id: string } = {
    resourceType: 'Condition',
    id: out.id('condition', key),
    meta: out.meta(),
    ...(type && { verificationStatus: { coding: [{ system: CONDITION_VERIFICATION, code: type.verification }] } }),
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }] }],
    code,
    subject: { reference: patient.reference },
    ...(visit && { encounter: { reference: visit.reference } }),
    ...(recordedDate && { recordedDate }),
  };
  const diagnosis: EncounterDiagnosis = {
    condition: { reference: `Condition/${condition.id}` },
    ...(type?.role && { use: { coding: [{ system: DIAGNOSIS_ROLE, code: type.role }] } }),
    ...(rank !== undefined && { rank }),
  };
  return { condition, diagnosis };
}
