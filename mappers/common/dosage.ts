/**
 * How Chinese prescriptions write frequency and route (Latin abbreviations, Chinese words),
 * as FHIR Timing and v2 table 0162 routes. One table for every source format.
 */
import type { CodeableConcept, Coding, TimingRepeat } from '@medplum/fhirtypes';
import { V2_0162 } from './systems';

type Repeat = Pick<TimingRepeat, 'frequency' | 'period' | 'periodUnit' | 'when' | 'count'>;

const FREQUENCY: Readonly<Record<string, Repeat>> = {
  QD: { frequency: 1, period: 1, periodUnit: 'd' },
  BID: { frequency: 2, period: 1, periodUnit: 'd' },
  TID: { frequency: 3, period: 1, periodUnit: 'd' },
  QID: { frequency: 4, period: 1, periodUnit: 'd' },
  QOD: { frequency: 1, period: 2, periodUnit: 'd' },
  QW: { frequency: 1, period: 1, periodUnit: 'wk' },
  BIW: { frequency: 2, period: 1, periodUnit: 'wk' },
  TIW: { frequency: 3, period: 1, periodUnit: 'wk' },
  QM: { frequency: 1, period: 1, periodUnit: 'd', when: ['MORN'] },
  QAM: { frequency: 1, period: 1, periodUnit: 'd', when: ['MORN'] },
  QPM: { frequency: 1, period: 1, periodUnit: 'd', when: ['EVE'] },
  // 每晚一次: in Chinese practice taken at bedtime.
  QN: { frequency: 1, period: 1, periodUnit: 'd', when: ['HS'] },
  HS: { frequency: 1, period: 1, periodUnit: 'd', when: ['HS'] },
  ST: { count: 1 },
  STAT: { count: 1 },
  ONCE: { count: 1 },
};
/** Q4H, Q30MIN, Q2D, Q1W ... */
const EVERY = /^Q(\d+)(MIN|H|D|W)$/;
const EVERY_UNIT: Readonly<Record<string, TimingRepeat['periodUnit']>> = { MIN: 'min', H: 'h', D: 'd', W: 'wk' };

export interface Frequency {
  /** Absent for PRN alone: when needed has no schedule. */
  repeat?: TimingRepeat;
  asNeeded: boolean;
}

/** A frequency code (qd, bid, q8h, prn ... in any case), or undefined when it is not one this gateway knows. */
export function frequency(code: string): Frequency | undefined {
  const upper = code.trim().toUpperCase();
  if (upper === 'PRN') return { asNeeded: true };
  const every = EVERY.exec(upper);
  const known = FREQUENCY[upper] ?? (every ? { frequency: 1, period: Number(every[1]), periodUnit: EVERY_UNIT[every[2]] } : undefined);
  // A fresh object (and `when` array) per call: resources must not share objects a later stage might edit.
  return known && { repeat: { ...known, ...(known.when && { when: [...known.when] }) }, asNeeded: false };
}

/** HL7 table 0162 routes used in prescriptions. */
const ROUTE_DISPLAY: Readonly<Record<string, string>> = {
  PO: 'Oral',
  IV: 'Intravenous',
  IM: 'Intramuscular',
  SC: 'Subcutaneous',
  ID: 'Intradermal',
  SL: 'Sublingual',
  IH: 'Inhalation',
  NS: 'Nasal',
  TP: 'Topical',
  TD: 'Transdermal',
  PR: 'Rectal',
  OP: 'Ophthalmic',
  OT: 'Otic',
  VG: 'Vaginal',
};
/** What Chinese prescriptions write for them: the words, and the Latin abbreviations (ivgtt, H ...). */
const ROUTE_ALIASES: Readonly<Record<string, string>> = {
  口服: 'PO', ORAL: 'PO', 静脉滴注: 'IV', 静滴: 'IV', IVGTT: 'IV', 静脉注射: 'IV', 静推: 'IV', 肌肉注射: 'IM', 肌注: 'IM',
  皮下注射: 'SC', H: 'SC', 皮内注射: 'ID', 舌下含服: 'SL', 吸入: 'IH', 雾化吸入: 'IH', INH: 'IH', 滴鼻: 'NS', 外用: 'TP',
  贴敷: 'TD', 直肠给药: 'PR', 塞肛: 'PR', 滴眼: 'OP', 滴耳: 'OT', 阴道给药: 'VG',
};

/** The table 0162 coding of a route as written (code or words), or undefined. */
export function routeCoding(written: string): Coding | undefined {
  const upper = written.trim().toUpperCase();
  const code = ROUTE_DISPLAY[upper] ? upper : ROUTE_ALIASES[upper];
  return code ? { system: V2_0162, code, display: ROUTE_DISPLAY[code] } : undefined;
}

/** A route as written: the sender's words always, the table 0162 coding when they are known. */
export function route(written: string): CodeableConcept {
  const coding = routeCoding(written);
  return { ...(coding && { coding: [coding] }), text: written.trim() };
}
