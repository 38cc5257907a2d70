/**
 * A chronic-disease follow-up (高血压/糖尿病随访) row: the resident's Patient (the centre is
 * where its residents are registered, so this is the registration, not a copy), the visit as
 * an Encounter, and an Observation per measurement given. An empty cell is a measurement
 * not taken: no Observation.
 */
import type { CodeableConcept, Encounter, Observation, ObservationComponent } from '@medplum/fhirtypes';
import { attender, ENCOUNTER_CLASS } from '../common/encounter';
import { localConcept } from '../common/local-code';
import { addPatient, type Demographics } from '../common/patient';
import type { ResultBuilder } from '../common/result';
import { LOINC, OBSERVATION_CATEGORY, SNOMED } from '../common/systems';
import { ucumQuantity } from '../common/units';
import type { Row } from './row';

const COLUMNS: Partial<Record<keyof Demographics, string>> = { mrn: 'jmbh', name: 'xm', sex: 'xb', birthDate: 'csrq', idCard: 'sfzh', phone: 'lxdh' };

interface Measure {
  column: string;
  loinc: string;
  display: string;
  /** What the centre's staff call it. */
  text: string;
  category: 'vital-signs' | 'laboratory';
  ucum: string;
}

const SYSTOLIC = { column: 'ssy', loinc: '8480-6', display: 'Systolic blood pressure', text: '收缩压', ucum: 'mm[Hg]' };
const DIASTOLIC = { column: 'szy', loinc: '8462-4', display: 'Diastolic blood pressure', text: '舒张压', ucum: 'mm[Hg]' };
/** The follow-up form records glucose in mmol/L, hence the molar LOINC code (1558-6 is mass per volume). */
const MEASURES: readonly Measure[] = [
  { column: 'kfxt', loinc: '14771-0', display: 'Fasting glucose [Moles/volume] in Serum or Plasma', text: '空腹血糖', category: 'laboratory', ucum: 'mmol/L' },
  { column: 'tz', loinc: '29463-7', display: 'Body weight', text: '体重', category: 'vital-signs', ucum: 'kg' },
  { column: 'sg', loinc: '8302-2', display: 'Body height', text: '身高', category: 'vital-signs', ucum: 'cm' },
];

const loinc = (code: string, display: string, text: string): CodeableConcept => ({ coding: [{ system: LOINC, code, display }], text });

export function mapFollowUp(out: ResultBuilder, row: Row, number: string): void {
  const patient = addPatient(
    out,
    { mrn: row.required('jmbh'), name: row.required('xm'), sex: row.required('xb'), birthDate: row.text('csrq'), idCard: row.text('sfzh'), phone: row.text('lxdh') },
    (field) => row.at(COLUMNS[field]!),
    false,
  );
  const when = row.requiredDate('sfrq');
  const disease = row.text('jblx');
  const doctor = row.text('sfys');
  const encounter: Encounter & { id: string } = {
    resourceType: 'Encounter',
    id: out.id('encounter', number),
    meta: out.meta(),
    identifier: [{ use: 'usual', system: out.localSystem('followup'), value: number }],
    status: 'finished',
    class: { ...ENCOUNTER_CLASS.ambulatory },
    type: [{ coding: [{ system: SNOMED, code: '390906007', display: 'Follow-up encounter' }], text: disease ? `${disease}随访` : '慢病随访' }],
    subject: { reference: patient },
    ...(doctor && { participant: [attender(doctor)] }),
    period: { start: when },
    // 高血压, 糖尿病: the disease under management, through the centre's ConceptMap to ICD-10.
    ...(disease && { reasonCode: [localConcept(out, 'diagnosis', disease, disease)] }),
    serviceProvider: out.organization,
  };
  out.add(encounter);

  const observation = (key: string, code: CodeableConcept, category: Measure['category'], value: Pick<Observation, 'valueQuantity' | 'component'>): void => {
    const o: Observation & { id: string } = {
      resourceType: 'Observation',
      id: out.id('observation', `${number}|${key}`),
      meta: out.meta(),
      status: 'final',
      category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: category }] }],
      code,
      subject: { reference: patient },
      encounter: { reference: `Encounter/${encounter.id}` },
      effectiveDateTime: when,
      performer: [out.organization],
      ...value,
    };
    out.add(o);
  };

  // Systolic and diastolic are one reading: a panel whose components are the two values.
  const component: ObservationComponent[] = [];
  for (const m of [SYSTOLIC, DIASTOLIC]) {
    const value = row.number(m.column);
    if (value !== undefined) component.push({ code: loinc(m.loinc, m.display, m.text), valueQuantity: ucumQuantity(value, m.ucum) });
  }
  if (component.length > 0) observation('85354-9', loinc('85354-9', 'Blood pressure panel with all children optional', '血压'), 'vital-signs', { component });
  for (const m of MEASURES) {
    const value = row.number(m.column);
    if (value !== undefined) observation(m.loinc, loinc(m.loinc, m.display, m.text), m.category, { valueQuantity: ucumQuantity(value, m.ucum) });
  }
}
