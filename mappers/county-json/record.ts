/**
 * The county HIS's records as profiles/inbound/county-hospital.schema.json describes them,
 * and what every record type's mapping shares. Types only hold after schema.ts has checked.
 */
import { localDateTime } from '../context';
import { addPatient } from '../common/patient';
import type { ResultBuilder } from '../common/result';

/** Code fields arrive as strings or numbers ("1" or 1). */
export type Code = string | number;

export interface PatientRecord {
  lx: 'br';
  brid: string;
  brxm: string;
  xb: Code;
  csrq?: string;
  sfzh?: string;
  lxdh?: string;
  jtzz?: string;
  ybkh?: string;
  jkkh?: string;
}

export interface Diagnosis {
  zddm: string;
  zdmc: string;
  zdlx?: Code;
  icd10?: string;
}

export interface VisitRecord {
  lx: 'jz';
  jzlsh: string;
  brid: string;
  jzlx: Code;
  ksmc?: string;
  ysxm?: string;
  jzsj: string;
  cysj?: string;
  zd?: Diagnosis[];
}

export interface LabItem {
  xmdm: string;
  xmmc: string;
  jg: string | number;
  dw?: string;
  ckfw?: string;
  bz?: string;
}

export interface LabRecord {
  lx: 'jy';
  bgdh: string;
  brid: string;
  jzlsh?: string;
  bgsj: string;
  sjsj?: string;
  bbmc?: string;
  xm: LabItem[];
}

export interface ExamRecord {
  lx: 'jc';
  bgdh: string;
  brid: string;
  jzlsh?: string;
  jclx: string;
  jcbw?: string;
  jcdm?: string;
  jcmc?: string;
  jcsj?: string;
  bgsj: string;
  sj?: string;
  zd?: string;
  yxh?: string;
}

export interface DrugLine {
  ypdm: string;
  ypmc: string;
  gg?: string;
  jl?: string | number;
  jldw?: string;
  pc?: string;
  gytj?: string;
  ts?: string | number;
  sl?: string | number;
  sldw?: string;
}

export interface PrescriptionRecord {
  lx: 'cf';
  cfh: string;
  brid: string;
  jzlsh?: string;
  kfsj: string;
  ysxm?: string;
  yp: DrugLine[];
}

export interface ReferralRecord {
  lx: 'zzd';
  zzdh: string;
  brid: string;
  zzlx: '上转' | '下转';
  zrjg: string;
  zzsj: string;
  zzyy?: string;
  /** 撤销: the referring hospital withdrew the referral. */
  zt?: '有效' | '撤销';
  jjcd?: Code;
  zd?: Diagnosis[];
  cyxj?: string;
}

export type CountyRecord = PatientRecord | VisitRecord | LabRecord | ExamRecord | PrescriptionRecord | ReferralRecord;

/** The field holding each record type's own number: named in meta.source, the local id of its main resource. */
export const KEY_FIELD: Readonly<Record<CountyRecord['lx'], string>> = { br: 'brid', jz: 'jzlsh', jy: 'bgdh', jc: 'bgdh', cf: 'cfh', zzd: 'zzdh' };

export const recordId = (r: CountyRecord): string => (r as unknown as Record<string, string>)[KEY_FIELD[r.lx]];

/** A time the schema has checked (format local-date-time), at the consortium's offset. */
export const time = (checked: string): string => localDateTime(checked)!;

/**
 * The patient of a visit, report or prescription: a create-only copy holding only the MRN,
 * so the reference resolves before the registration (br) arrives and never overwrites it.
 */
export const patientCopy = (out: ResultBuilder, brid: string): string => addPatient(out, { mrn: brid }, () => ({ path: '$.brid' }), true);

/**
 * The visit a report or prescription belongs to. No Encounter copy is written: the record
 * does not say the visit's class, which an Encounter must have; the jz record brings it.
 */
export const visitOf = (out: ResultBuilder, jzlsh: string | undefined): { encounter: { reference: string } } | undefined =>
  jzlsh === undefined ? undefined : { encounter: { reference: out.ref('Encounter', 'encounter', jzlsh) } };
