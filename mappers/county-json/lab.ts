/** jy: a laboratory report (检验报告) as a DiagnosticReport, each item an Observation. */
import type { DiagnosticReport, Observation, Reference } from '@medplum/fhirtypes';
import { resultElements } from '../common/lab-result';
import { localConcept } from '../common/local-code';
import type { ResultBuilder } from '../common/result';
import { OBSERVATION_CATEGORY, V2_0074, v2IdentifierType } from '../common/systems';
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
    ...resultElements(out, { value: item.jg, unit: item.dw, flag: item.bz, range: item.ckfw }, { unit: `$.xm[${i}].dw`, flag: `$.xm[${i}].bz` }),
  };
}
