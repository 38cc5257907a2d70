/**
 * A laboratory result row (检验结果) of the centre's LIS: one Observation, for a resident whose
 * registration is the follow-up system's, so the demographics here are a copy (written only
 * if the resident is not registered yet). The centre's LIS prints no panel, so a row is not
 * grouped into a report: `bgh` (report number), when given, is kept as the Observation's
 * identifier beside the row's own number.
 */
import type { Observation } from '@medplum/fhirtypes';
import { resultElements } from '../common/lab-result';
import { localConcept } from '../common/local-code';
import { addPatient, type Demographics } from '../common/patient';
import type { ResultBuilder } from '../common/result';
import { OBSERVATION_CATEGORY } from '../common/systems';
import { formatLocation } from '../types';
import type { Row } from './row';

const PATIENT_COLUMNS: Partial<Record<keyof Demographics, string>> = { mrn: 'jmbh', name: 'xm', sex: 'xb', birthDate: 'csrq' };

export function mapLabRow(out: ResultBuilder, row: Row, number: string): void {
  const patient = addPatient(
    out,
    { mrn: row.required('jmbh'), name: row.text('xm'), sex: row.text('xb'), birthDate: row.text('csrq') },
    (field) => row.at(PATIENT_COLUMNS[field]!),
    true,
  );
  const report = row.text('bgh');
  const issued = row.date('bgsj', true);
  const observation: Observation & { id: string } = {
    resourceType: 'Observation',
    id: out.id('observation', number),
    meta: out.meta(),
    identifier: [
      { use: 'official', system: out.localSystem('lab-result'), value: number },
      ...(report ? [{ use: 'secondary' as const, system: out.localSystem('report'), value: report }] : []),
    ],
    status: 'final',
    category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'laboratory' }] }],
    code: localConcept(out, 'lab', row.required('xmdm'), row.text('xmmc')),
    subject: { reference: patient },
    // Results are of the specimen: when it was collected.
    effectiveDateTime: row.requiredDate('cjsj', true),
    ...(issued && { issued: new Date(issued).toISOString() }),
    performer: [out.organization],
    ...resultElements(out, { value: row.required('jg'), unit: row.text('dw'), flag: row.text('ycbz'), range: row.text('ckfw') }, { unit: formatLocation(row.at('dw')), flag: formatLocation(row.at('ycbz')) }),
  };
  out.add(observation);
}
