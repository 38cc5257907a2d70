/**
 * What laboratory systems write beside a result, whatever the format carrying it: abnormal
 * flags, reference ranges as text, numbers with a comparator in front.
 */
import type { CodeableConcept, ObservationReferenceRange, Quantity } from '@medplum/fhirtypes';
import { V3_INTERPRETATION } from './systems';

/** HL7 table 0078 abnormal flags: the same codes in v3 ObservationInterpretation. */
const INTERPRETATION: Readonly<Record<string, string>> = {
  L: 'Low',
  H: 'High',
  LL: 'Critical low',
  HH: 'Critical high',
  LU: 'Significantly low',
  HU: 'Significantly high',
  '<': 'Off scale low',
  '>': 'Off scale high',
  N: 'Normal',
  A: 'Abnormal',
  AA: 'Critical abnormal',
  POS: 'Positive',
  NEG: 'Negative',
  IND: 'Indeterminate',
  DET: 'Detected',
  ND: 'Not detected',
  S: 'Susceptible',
  R: 'Resistant',
  I: 'Intermediate',
  U: 'Significant change up',
  D: 'Significant change down',
  B: 'Better',
  W: 'Worse',
};
/** Flags Chinese LIS print instead (a Map: looked up by the sender's text as it is). */
const FLAG_ALIASES: ReadonlyMap<string, string> = new Map(Object.entries({ '↑': 'H', '↓': 'L', '↑↑': 'HH', '↓↓': 'LL', 高: 'H', 低: 'L', 阳性: 'POS', 阴性: 'NEG', 正常: 'N' }));

/** An abnormal flag as an interpretation, or undefined when it is no flag this gateway knows. */
export function interpretation(flag: string): CodeableConcept | undefined {
  const raw = flag.trim();
  // Upper case: no key of Object.prototype can come out of it.
  const code = FLAG_ALIASES.get(raw) ?? raw.toUpperCase();
  const display = INTERPRETATION[code];
  return display === undefined ? undefined : { coding: [{ system: V3_INTERPRETATION, code, display }] };
}

const DECIMAL = '[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)';
const NUMBER = new RegExp(`^(${DECIMAL})$`);
/** <5.2, <=5.2, ≤5.2, >40 */
const BOUND = new RegExp(`^(<=|>=|<|>|≤|≥)\\s*(${DECIMAL})$`);
/** 3.5-9.5, 3.5~9.5, 3.5--9.5, 3.5—9.5, 3.5至9.5 */
const RANGE = new RegExp(`^(${DECIMAL})\\s*(?:--|-|~|～|—|–|至)\\s*(${DECIMAL})$`);
const COMPARATORS: Readonly<Record<string, Quantity['comparator']>> = { '<': '<', '>': '>', '<=': '<=', '>=': '>=', '≤': '<=', '≥': '>=' };

/**
 * Full-width digits and signs (１２.５, ＜５.２), as Chinese input methods type them, read as
 * ASCII. NFKC only where it can matter: most values are ASCII already.
 */
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;
const ascii = (text: string): string => (NON_ASCII.test(text) ? text.normalize('NFKC') : text).trim();

/** A decimal number as written (full-width digits allowed), or undefined when the text is not one. */
export function decimal(text: string): number | undefined {
  const m = NUMBER.exec(ascii(text));
  return m ? Number(m[1]) : undefined;
}

/** A numeric result, with the comparator an LIS may put in front (<0.1, >1000); undefined when it is text (阴性, 1:40 ...). */
export function numericResult(text: string): { value: number; comparator?: Quantity['comparator'] } | undefined {
  const t = ascii(text);
  const n = NUMBER.exec(t);
  if (n) return { value: Number(n[1]) };
  const b = BOUND.exec(t);
  return b ? { value: Number(b[2]), comparator: COMPARATORS[b[1]] } : undefined;
}

/**
 * A reference range as the LIS prints it: low and high in the result's unit when numeric
 * (`unit` builds the Quantity), and always the text itself, which keeps what low/high cannot
 * say (that `<5.2` excludes 5.2; 阴性; age bands).
 */
export function referenceRange(text: string, unit: (value: number) => Quantity): ObservationReferenceRange {
  const t = ascii(text);
  const r = RANGE.exec(t);
  if (r) return { low: unit(Number(r[1])), high: unit(Number(r[2])), text: text.trim() };
  const b = BOUND.exec(t);
  if (b) return COMPARATORS[b[1]]!.startsWith('<') ? { high: unit(Number(b[2])), text: text.trim() } : { low: unit(Number(b[2])), text: text.trim() };
  return { text: text.trim() };
}
