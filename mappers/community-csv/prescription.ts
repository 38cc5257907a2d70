/** A prescription row: one drug line, for a resident the centre registered in its follow-up file. */
import { addPatient, type Demographics } from '../common/patient';
import { addPrescription, type PrescriptionAt } from '../common/prescription';
import type { ResultBuilder } from '../common/result';
import type { Row } from './row';

const PATIENT_COLUMNS: Partial<Record<keyof Demographics, string>> = { mrn: 'jmbh', name: 'xm' };
const COLUMNS: Readonly<Record<Parameters<PrescriptionAt>[0], string>> = { drugCode: 'ypdm', dose: 'jl', doseUnit: 'jldw', frequency: 'pc', quantityUnit: 'sldw' };

export function mapPrescriptionRow(out: ResultBuilder, row: Row, number: string): void {
  // The prescription file carries only MRN and name: a copy, never written over the registration.
  const patient = addPatient(out, { mrn: row.required('jmbh'), name: row.text('xm') }, (field) => row.at(PATIENT_COLUMNS[field]!), true);
  addPrescription(
    out,
    {
      number,
      patient,
      authoredOn: row.requiredDate('kfrq', true),
      prescriber: row.text('ysxm'),
      drugCode: row.required('ypdm'),
      drugName: row.required('ypmc'),
      dose: row.positive('jl'),
      doseUnit: row.text('jldw'),
      frequency: row.text('pc'),
      route: row.text('gytj'),
      days: row.wholeDays('ts'),
      quantity: row.positive('sl'),
      quantityUnit: row.text('sldw'),
    },
    (field) => row.at(COLUMNS[field]),
  );
}
