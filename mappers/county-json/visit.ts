/** jz: a visit (门诊, 住院, 急诊) as an Encounter, and its diagnoses as Conditions. */
import type { Coding, Condition, Encounter, EncounterDiagnosis } from '@medplum/fhirtypes';
import { attender, ENCOUNTER_CLASS } from '../common/encounter';
import { localConcept } from '../common/local-code';
import type { ResultBuilder } from '../common/result';
import { CONDITION_CATEGORY, ICD10, v2IdentifierType } from '../common/systems';
import { MappingError } from '../types';
import { patientCopy, time, type Diagnosis, type VisitRecord } from './record';

/** 就诊类型 as the Encounter class. */
const CLASS: Readonly<Record<string, Coding>> = { '1': ENCOUNTER_CLASS.ambulatory, '2': ENCOUNTER_CLASS.inpatient, '3': ENCOUNTER_CLASS.emergency };
/** A WHO ICD-10 code, which zddm may be instead of a local code. */
const ICD10_FORM = /^[A-Z]\d{2}(?:\.\d{1,2})?$/;

export function mapVisit(out: ResultBuilder, r: VisitRecord): void {
  const patient = patientCopy(out, r.brid);
  const id = out.id('encounter', r.jzlsh);
  const cls = CLASS[String(r.jzlx)];
  const start = time(r.jzsj);
  const end = r.cysj === undefined ? undefined : time(r.cysj);
  // Both are +08:00 with seconds: comparable as text.
  if (end !== undefined && end < start) throw new MappingError('the visit ends before it starts (jzsj)', { path: '$.cysj' }, 'value');
  // The main diagnosis (zdlx 1) ranks first, secondary ones after it in the order listed.
  let secondary = 1;
  const diagnoses = (r.zd ?? []).map((d) => {
    const type = String(d.zdlx);
    const rank = type === '1' ? 1 : type === '2' ? ++secondary : undefined;
    return condition(out, r.jzlsh, d, rank, patient, `Encounter/${id}`, start);
  });
  const encounter: Encounter & { id: string } = {
    resourceType: 'Encounter',
    id,
    meta: out.meta(),
    identifier: [{ use: 'usual', type: v2IdentifierType('VN', '就诊流水号'), system: out.localSystem('visit-number'), value: r.jzlsh }],
    // An outpatient visit is over the day it is recorded; a stay or an emergency lasts until its end time comes.
    status: end !== undefined || cls.code === 'AMB' ? 'finished' : 'in-progress',
    class: { ...cls },
    ...(r.ksmc && { serviceType: { text: r.ksmc } }),
    subject: { reference: patient },
    ...(r.ysxm && { participant: [attender(r.ysxm)] }),
    period: { start, ...(end && { end }) },
    ...(diagnoses.length > 0 && { diagnosis: diagnoses.map((d) => d.diagnosis) }),
    serviceProvider: out.organization,
  };
  out.add(encounter);
  diagnoses.forEach((d, i) => {
    if (!out.add(d.condition)) throw new MappingError('the diagnosis appears twice in the visit', { path: `$.zd[${i}].zddm` }, 'value');
  });
}

/** A Condition keyed by the visit and the local code, so a resent visit updates it. */
function condition(
  out: ResultBuilder,
  visit: string,
  d: Diagnosis,
  rank: number | undefined,
  patient: string,
  encounter: string,
  recordedDate: string,
): { condition: Condition & { id: string }; diagnosis: EncounterDiagnosis } {
  // The sender's own ICD-10 for this diagnosis, or the local code when it is one, else the ConceptMap.
  const icd10 = d.icd10 ?? (ICD10_FORM.test(d.zddm) ? d.zddm : undefined);
  const condition: Condition & { id: string } = {
    resourceType: 'Condition',
    id: out.id('condition', `${visit}|${d.zddm}`),
    meta: out.meta(),
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }] }],
    code: localConcept(out, 'diagnosis', d.zddm, d.zdmc, icd10 === undefined ? undefined : { system: ICD10, code: icd10 }),
    subject: { reference: patient },
    encounter: { reference: encounter },
    recordedDate,
  };
  return { condition, diagnosis: { condition: { reference: `Condition/${condition.id}` }, ...(rank !== undefined && { rank }) } };
}
