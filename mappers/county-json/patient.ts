/** br: the hospital's registration of a patient (建档), the one county record that owns the Patient. */
import { addPatient, type Demographics } from '../common/patient';
import type { ResultBuilder } from '../common/result';
import type { PatientRecord } from './record';

const FIELDS: Readonly<Record<keyof Demographics, string>> = {
  mrn: 'brid',
  name: 'brxm',
  sex: 'xb',
  birthDate: 'csrq',
  idCard: 'sfzh',
  phone: 'lxdh',
  address: 'jtzz',
  insuranceCard: 'ybkh',
  healthCard: 'jkkh',
};

export function mapRegistration(out: ResultBuilder, r: PatientRecord): void {
  const d: Demographics = { mrn: r.brid, name: r.brxm, sex: String(r.xb), birthDate: r.csrq, idCard: r.sfzh, phone: r.lxdh, address: r.jtzz, insuranceCard: r.ybkh, healthCard: r.jkkh };
  addPatient(out, d, (field) => ({ path: `$.${FIELDS[field]}` }), false);
}
