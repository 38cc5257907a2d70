/** Administration frequency and duration (TQ1, or the older TQ in RXE-1) as a FHIR Timing. */
import type { Duration, Timing, TimingRepeat } from '@medplum/fhirtypes';
import { frequency } from '../common/dosage';
import type { ResultBuilder } from '../common/result';
import { UCUM } from '../common/systems';
import { unitCode } from './units';

/** TQ.3 duration: S/M/H/D/W/L (seconds ... months) or X (times) and a count. */
const TQ_DURATION = /^([SMHDWLX])(\d+)$/;
const TQ_UNIT: Readonly<Record<string, string>> = { S: 's', M: 'min', H: 'h', D: 'd', W: 'wk', L: 'mo' };
const TIME_UNITS: ReadonlySet<string> = new Set(['s', 'min', 'h', 'd', 'wk', 'mo']);

export interface TimingParts {
  /** Repeat pattern code (TQ1-3.1 / TQ.2). */
  frequency?: { code: string; where: string };
  /** TQ.3 ('D7', 'X3'). */
  tqDuration?: { raw: string; where: string };
  /** TQ1-6 (CQ: quantity ^ units). */
  serviceDuration?: { value: number; unit: string; where: string };
  start?: string;
  end?: string;
}

export interface DosageTiming {
  timing?: Timing;
  asNeeded: boolean;
}

/** The Timing of a prescription line; unknown codes are kept as text and warned about. */
export function dosageTiming(p: TimingParts, out: ResultBuilder): DosageTiming {
  const known = p.frequency && frequency(p.frequency.code);
  if (p.frequency && !known) out.warn(p.frequency.where, `frequency '${p.frequency.code}' is not one this gateway knows; kept as text`);
  const asNeeded = known?.asNeeded ?? false;
  const repeat: TimingRepeat = known?.repeat ?? {};
  const bounds = boundsOf(p, out);
  if (bounds.count !== undefined) repeat.count = bounds.count;
  if (bounds.duration) repeat.boundsDuration = bounds.duration;
  else if (p.start || p.end) repeat.boundsPeriod = { ...(p.start && { start: p.start }), ...(p.end && { end: p.end }) };
  const hasRepeat = Object.keys(repeat).length > 0;
  if (!hasRepeat && p.frequency === undefined) return { asNeeded };
  return {
    timing: { ...(hasRepeat && { repeat }), ...(p.frequency && { code: { text: p.frequency.code } }) },
    asNeeded,
  };
}

function boundsOf(p: TimingParts, out: ResultBuilder): { duration?: Duration; count?: number } {
  if (p.serviceDuration) {
    const coded = unitCode(p.serviceDuration.unit);
    if (coded && TIME_UNITS.has(coded.code)) return { duration: { value: p.serviceDuration.value, unit: coded.code, system: UCUM, code: coded.code } };
    out.warn(p.serviceDuration.where, `duration unit '${p.serviceDuration.unit}' is not a unit of time; left out`);
    return {};
  }
  if (p.tqDuration) {
    const m = TQ_DURATION.exec(p.tqDuration.raw.toUpperCase());
    if (!m) {
      if (p.tqDuration.raw.toUpperCase() !== 'INDEF') out.warn(p.tqDuration.where, `duration '${p.tqDuration.raw}' is not of the form D7, W2, X3; left out`);
      return {};
    }
    if (m[1] === 'X') return { count: Number(m[2]) };
    const unit = TQ_UNIT[m[1]];
    return { duration: { value: Number(m[2]), unit, system: UCUM, code: unit } };
  }
  return {};
}
