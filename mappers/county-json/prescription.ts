/** cf: a prescription (处方), one MedicationRequest per drug line. */
import { addPrescription, type PrescriptionAt } from '../common/prescription';
import type { ResultBuilder } from '../common/result';
import { patientCopy, time, visitOf, type PrescriptionRecord } from './record';

const FIELDS: Readonly<Record<Parameters<PrescriptionAt>[0], string>> = {
  drugCode: 'ypdm',
  dose: 'jl',
  doseUnit: 'jldw',
  frequency: 'pc',
  quantityUnit: 'sldw',
};

/** Numbers the schema has checked: a JSON number, or a string of digits. */
const num = (v: string | number | undefined): number | undefined => (v === undefined ? undefined : Number(v));

export function mapPrescription(out: ResultBuilder, r: PrescriptionRecord): void {
  const patient = patientCopy(out, r.brid);
  const encounter = visitOf(out, r.jzlsh)?.encounter.reference;
  const authoredOn = time(r.kfsj);
  r.yp.forEach((line, i) =>
    addPrescription(
      out,
      {
        number: r.cfh,
        patient,
        ...(encounter && { encounter }),
        authoredOn,
        ...(r.ysxm && { prescriber: r.ysxm }),
        drugCode: line.ypdm,
        drugName: line.ypmc,
        spec: line.gg,
        dose: num(line.jl),
        doseUnit: line.jldw,
        frequency: line.pc,
        route: line.gytj,
        days: num(line.ts),
        quantity: num(line.sl),
        quantityUnit: line.sldw,
      },
      (field) => ({ path: `$.yp[${i}].${FIELDS[field]}` }),
    ),
  );
}
