/** OBX to Observation: value by OBX-2, reference range, abnormal flags, status. */
import type { CodeableConcept, Observation, ObservationReferenceRange, Quantity } from '@medplum/fhirtypes';
import { codeable, type LocalKind } from './coding';
import type { VisitRef } from './encounter';
import { parseNumber, type Er7Segment } from './er7';
import type { PatientRef } from './patient';
import type { ResultBuilder } from '../common/result';
import { observationCategory, type Section } from './sections';
import { interpretation, referenceRange } from '../common/lab-values';
import { quantity, unitOf, type UnitField } from './units';

/** OBX-11 observation result status (HL7 table 0085). */
const OBX_STATUS: Readonly<Record<string, Observation['status']>> = {
  F: 'final',
  U: 'final',
  C: 'corrected',
  P: 'preliminary',
  R: 'preliminary',
  S: 'preliminary',
  I: 'registered',
  O: 'registered',
  X: 'cancelled',
  N: 'cancelled',
  D: 'entered-in-error',
  W: 'entered-in-error',
};

/** A comparator in front of an NM value: strictly an SN, but LIS send it. */
const COMPARED = /^(<=|>=|<|>)\s*(.+)$/;
const COMPARATORS: Readonly<Record<string, Quantity['comparator']>> = { '<': '<', '>': '>', '<=': '<=', '>=': '>=', '≤': '<=', '≥': '>=' };

export const TEXT_TYPES: ReadonlySet<string> = new Set(['ST', 'TX', 'FT']);

/** OBX-11, required (the status is a modifier: it cannot be guessed). */
export function obxStatus(obx: Er7Segment): Observation['status'] {
  const raw = obx.need(11, 'observation result status');
  const status = OBX_STATUS[raw.toUpperCase()];
  if (!status) throw obx.error(`${obx.label(11)} result status '${raw}' is not an HL7 table 0085 code`, 11, undefined, 'code-invalid');
  return status;
}

/** OBX-5 text repetitions (TX lines) as one text. */
export function obxText(obx: Er7Segment): string | undefined {
  const text = obx
    .reps(5)
    .map((r) => r.text() ?? '')
    .join('\n')
    .trim();
  return text === '' ? undefined : text;
}

export interface ObservationContext {
  patient: PatientRef;
  visit?: VisitRef;
  /** `ServiceRequest/<id>` of the order, when it is known. */
  basedOn?: string;
  section: Section;
  /** OBR-7, for OBX without OBX-14. */
  effective?: string;
}

/** `status` is obxStatus(obx), which the report has already read. */
export function observationFromObx(
  obx: Er7Segment,
  id: string,
  status: Observation['status'],
  notes: string[],
  c: ObservationContext,
  out: ResultBuilder,
): Observation & { id: string } {
  const code = codeable(obx.field(3), c.section.codeKind, out);
  if (!code) throw obx.missing(3, 'observation identifier');
  const unit = unitOf(obx.field(6));
  const value = obxValue(obx, unit, c.section.codeKind, out);
  const referenceRange = range(obx, unit);
  const interpretation = flags(obx, out);
  const effective = obx.dateTime(14) ?? c.effective;
  return {
    resourceType: 'Observation',
    id,
    meta: out.meta(),
    ...(c.basedOn && { basedOn: [{ reference: c.basedOn }] }),
    status,
    category: observationCategory(c.section),
    code,
    subject: { reference: c.patient.reference },
    ...(c.visit && { encounter: { reference: c.visit.reference } }),
    ...(effective && { effectiveDateTime: effective }),
    performer: [out.organization],
    ...value,
    ...(interpretation.length > 0 && { interpretation }),
    ...(notes.length > 0 && { note: notes.map((text) => ({ text })) }),
    ...(referenceRange && { referenceRange: [referenceRange] }),
  };
}

type ObservationValue = Pick<Observation, 'valueQuantity' | 'valueString' | 'valueCodeableConcept' | 'valueDateTime' | 'valueRange' | 'valueRatio'>;

/** OBX-5 read as OBX-2 says. An OBX without a value (cancelled, pending) has none. */
function obxValue(obx: Er7Segment, unit: UnitField, kind: LocalKind, out: ResultBuilder): ObservationValue {
  const type = obx.get(2)?.toUpperCase();
  if (obx.get(5) === undefined && obxText(obx) === undefined) return {};
  const unknownUnit = (u: string): void => out.warn(obx.label(6), `unit '${u}' has no UCUM mapping; kept as text`);
  switch (type) {
    case 'NM': {
      const raw = obx.get(5) ?? obxText(obx)!;
      const compared = COMPARED.exec(raw);
      const value = parseNumber(compared ? compared[2] : raw, () => obx.error(`${obx.label(5)} '${raw}' is not a number, as OBX-2 NM says`, 5, undefined, 'value'));
      const q = quantity(value, unit, unknownUnit);
      return { valueQuantity: compared ? { ...q, comparator: COMPARATORS[compared[1]] } : q };
    }
    case 'SN':
      return structuredNumeric(obx, unit, unknownUnit);
    case 'ST':
    case 'TX':
    case 'FT':
      return { valueString: obxText(obx) };
    case 'RP':
      return { valueString: obx.get(5) };
    case 'CE':
    case 'CWE':
    case 'CNE':
      return { valueCodeableConcept: codeable(obx.field(5), kind, out, false) };
    case 'DT':
    case 'TS':
    case 'DTM':
      return { valueDateTime: obx.dateTime(5) };
    case undefined:
      throw obx.missing(2, 'value type');
    default:
      throw obx.error(`${obx.label(2)} value type '${type}' is not supported (NM, SN, ST, TX, FT, CE, CWE, CNE, DT, TS, DTM, ED, RP are)`, 2, undefined, 'not-supported');
  }
}

/** SN: comparator (.1), number (.2), separator/suffix (.3), number (.4): >90, 1:128, 2-5. */
function structuredNumeric(obx: Er7Segment, unit: UnitField, unknownUnit: (u: string) => void): ObservationValue {
  const f = obx.field(5);
  const num = (c: number): number | undefined => {
    const raw = f.get(c);
    return raw === undefined ? undefined : parseNumber(raw, () => obx.error(`${obx.label(5, c)} '${raw}' is not a number`, 5, c, 'value'));
  };
  const comparator = f.get(1);
  const first = num(2);
  const separator = f.get(3);
  const second = num(4);
  if (first === undefined) throw obx.missing(5, 'structured numeric value', 2);
  if (second !== undefined && (separator === ':' || separator === '/')) return { valueRatio: { numerator: { value: first }, denominator: { value: second } } };
  if (second !== undefined && separator === '-') return { valueRange: { low: quantity(first, unit, unknownUnit), high: quantity(second, unit, unknownUnit) } };
  if (separator === '+' && second === undefined) return { valueString: `${first}+` };
  if (second !== undefined || (separator !== undefined && separator !== '')) {
    throw obx.error(`${obx.label(5)} structured numeric separator '${separator ?? ''}' with '${f.get(4) ?? ''}' is not one of -, :, /, +`, 5, 3, 'value');
  }
  const q = quantity(first, unit, unknownUnit);
  if (comparator === undefined || comparator === '=') return { valueQuantity: q };
  const c = COMPARATORS[comparator];
  if (!c) throw obx.error(`${obx.label(5, 1)} comparator '${comparator}' is not one of <, >, <=, >=, =`, 5, 1, 'value');
  return { valueQuantity: { ...q, comparator: c } };
}

/** OBX-7 as low/high in the value's unit, and as the text itself (阴性, 1:40 以下, what `<` excludes). */
function range(obx: Er7Segment, unit: UnitField): ObservationReferenceRange | undefined {
  const raw = obx.text(7);
  if (raw === undefined) return undefined;
  // A reference range's unit is the value's; its unknown unit was warned about once already.
  return referenceRange(raw, (v) => quantity(v, unit, () => undefined));
}

function flags(obx: Er7Segment, out: ResultBuilder): CodeableConcept[] {
  const list: CodeableConcept[] = [];
  for (const rep of obx.reps(8)) {
    const raw = rep.get(1);
    if (raw === undefined) continue;
    const flag = interpretation(raw);
    if (flag) list.push(flag);
    else out.warn(rep.label, `abnormal flag '${raw}' is not an HL7 table 0078 code; left out`);
  }
  return list;
}
