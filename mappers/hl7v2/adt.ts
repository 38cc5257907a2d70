/** ADT events: the registration system's own Patient, Encounter and diagnoses; A40 merges. */
import type { Encounter, EncounterDiagnosis } from '@medplum/fhirtypes';
import { mrnIdentifier } from '../identifiers';
import { MappingError, type MergeRequest } from '../types';
import { conditionFromDg1 } from './diagnosis';
import { encounterOf } from './encounter';
import type { Er7Message } from './er7';
import { mrnOf, patientOf } from './patient';
import type { ResultBuilder } from '../common/result';

/** The visit status an event sets; A08 (update) sets none and carries what PV1 says. */
const EVENT_STATUS: Readonly<Record<string, Encounter['status']>> = {
  A01: 'in-progress',
  A04: 'in-progress',
  A03: 'finished',
};

/** A01 admit, A03 discharge, A04 register, A08 update. */
export function mapAdt(msg: Er7Message, trigger: string, out: ResultBuilder): void {
  const patient = patientOf(msg, out, false, 'an ADT message registers a patient');
  const status = EVENT_STATUS[trigger];
  const found = encounterOf(msg, patient, out, { required: status !== undefined, status, openStatus: 'in-progress' });
  if (found) out.add(found.encounter);
  const diagnosis: EncounterDiagnosis[] = [];
  for (const dg1 of msg.all('DG1')) {
    const c = conditionFromDg1(dg1, patient, found?.ref, out);
    if (out.add(c.condition)) diagnosis.push(c.diagnosis);
  }
  if (found && diagnosis.length > 0) found.encounter.diagnosis = diagnosis;
}

/**
 * A40: PID is the surviving registration, MRG-1 the one merged into it. The survivor keeps
 * the retired MRN as an old identifier (as FHIR's $merge does), and the patient index is
 * asked to retire the other Patient; it is not written here, having no data of its own.
 */
export function mapMerge(msg: Er7Message, out: ResultBuilder): MergeRequest {
  const survivor = patientOf(msg, out, false, 'ADT^A40 names the surviving patient');
  const mrg = msg.need('MRG', 'ADT^A40 names the registration merged away');
  const second = msg.all('MRG')[1];
  if (second) throw second.error('one merge per message: this gateway does not map a second MRG', undefined, undefined, 'not-supported');
  const retiredMrn = mrnOf(mrg.reps(1), out.ctx.source.mrnSystem)?.get(1);
  if (retiredMrn === undefined) throw new MappingError('MRG-1 holds no medical record number (a repetition typed MR, or an untyped one)', mrg.at(1), 'required');
  if (retiredMrn === survivor.mrn) throw mrg.error(`${mrg.label(1)} names the surviving MRN itself`, 1, undefined, 'value');
  const retired = out.ref('Patient', 'patient', retiredMrn);
  survivor.patient.identifier!.push({ ...mrnIdentifier(out.ctx.source.mrnSystem, retiredMrn), use: 'old' });
  survivor.patient.link = [{ other: { reference: retired }, type: 'replaces' }];
  return { survivor: survivor.reference, retired };
}
