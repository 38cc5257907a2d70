/** jy: a laboratory report (检验报告) as a DiagnosticReport, each item an Observation. */
import type { DiagnosticReport, Observation, Quantity, Reference } from '@medplum/fhirtypes';
import { interpretation, numericResult, referenceRange } from '../common/lab-values';
import { localConcept } from '../common/local-code';
import type { ResultBuilder } from '../common/result';
import { OBSERVATION_CATEGORY, V2_0074, v2IdentifierType } from '../common/systems';
import { quantity } from '../common/units';
import { MappingError } from '../types';
import { patientCopy, time, visitOf, type LabItem, type LabRecord } from './record';

export function mapLabReport(out: ResultBuilder, r: LabRecord): void {
  const patient = patientCopy(out, r.brid);
  const issued = time(r.bgsj);
  // Results are of the specimen: when it was taken, or failing that when they were released.
  const effective = r.sjsj === undefined ? issued : time(r.sjsj);
  const results = r.xm.map((item, i): Reference<Observation> => {
    const observation = labObservation(out, r, item, i, patient, effective, issued);
    if (!out.add(observation)) throw new MappingError('the item appears twice in the report', { path: `$.xm[${i}].xmdm` }, 'value');
    return { reference: `Observation/${observation.id}` };
  });
  const report: DiagnosticReport & { id: string } = {
    resourceType: 'DiagnosticReport',
    id: out.id('report', r.bgdh),
    meta: out.meta(),
    identifier: [{ use: 'official', type: v2IdentifierType('FILL', '报告单号'), system: out.localSystem('report'), value: r.bgdh }],
    status: 'final',
    category: [{ coding: [{ system: V2_0074, code: 'LAB', display: 'Laboratory' }] }],
    // The HIS names no panel, only the specimen.
    code: { text: r.bbmc ? `检验报告（${r.bbmc}）` : '检验报告' },
    subject: { reference: patient },
    ...visitOf(out, r.jzlsh),
    effectiveDateTime: effective,
    issued,
    performer: [out.organization],
    result: results,
  };
  out.add(report);
}

function labObservation(out: ResultBuilder, r: LabRecord, item: LabItem, i: number, patient: string, effective: string, issued: string): Observation & { id: string } {
  const unknownUnit = (unit: string): void => out.warn(`$.xm[${i}].dw`, `unit '${unit}' has no UCUM code; kept as text`);
  const unit = item.dw || undefined;
  const numeric = typeof item.jg === 'number' ? { value: item.jg } : numericResult(item.jg);
  // A text result (阴性, 1:40, 见附件) is a legal result, kept as the LIS wrote it.
  const value: Pick<Observation, 'valueQuantity' | 'valueString'> = numeric
    ? { valueQuantity: { ...quantity(numeric.value, unit, unknownUnit), ...(numeric.comparator && { comparator: numeric.comparator }) } }
    : { valueString: String(item.jg) };
  const flag = item.bz?.trim() ? interpretation(item.bz) : undefined;
  if (item.bz?.trim() && !flag) out.warn(`$.xm[${i}].bz`, `flag '${item.bz}' is not an abnormal flag this gateway knows; left out`);
  // The range is in the value's unit; an unknown unit was warned about once already.
  const inUnit = (value: number): Quantity => quantity(value, unit, () => undefined);
  return {
    resourceType: 'Observation',
    id: out.id('observation', `${r.bgdh}|${item.xmdm}`),
    meta: out.meta(),
    status: 'final',
    category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'laboratory' }] }],
    code: localConcept(out, 'lab', item.xmdm, item.xmmc),
    subject: { reference: patient },
    ...visitOf(out, r.jzlsh),
    effectiveDateTime: effective,
    issued,
    performer: [out.organization],
    ...value,
    ...(flag && { interpretation: [flag] }),
    ...(item.ckfw?.trim() && { referenceRange: [referenceRange(item.ckfw, inUnit)] }),
  };
}
