/** Facility-local codes with their standard translation beside them. */
import type { CodeableConcept, Coding } from '@medplum/fhirtypes';
import type { ResultBuilder } from './result';

/**
 * A local code of `kind` ('lab', 'exam', 'diagnosis', 'drug') in the source's local system.
 * The standard coding goes first (what a clinician's EHR shows) and the local one is always
 * kept after it: `given` when the sender coded the record itself (its own ICD-10 for this
 * diagnosis outranks a generic map of the local code), else the source's ConceptMap. A code
 * with neither is reported as unmapped.
 */
export function localConcept(out: ResultBuilder, kind: string, code: string, display?: string, given?: Coding): CodeableConcept {
  const local = { system: out.localSystem(kind), code, ...(display !== undefined && { display }) };
  const standard = given ?? out.ctx.terminology.translate(local.system, code);
  if (!standard) out.unmapped(local, kind);
  return { coding: standard ? [standard, local] : [local], ...(display !== undefined && { text: display }) };
}
