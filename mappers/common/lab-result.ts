/**
 * One result as a laboratory system writes it (value, unit, abnormal flag, reference range,
 * all text) to the Observation elements that say it. Shared by every source with a LIS export.
 */
import type { Observation, Quantity } from '@medplum/fhirtypes';
import { interpretation, numericResult, referenceRange } from './lab-values';
import type { ResultBuilder } from './result';
import { quantity } from './units';

export interface WrittenResult {
  /** A JSON source may send a number. */
  value: string | number;
  unit?: string;
  flag?: string;
  range?: string;
}

export type ResultElements = Pick<Observation, 'valueQuantity' | 'valueString' | 'interpretation' | 'referenceRange'>;

/** `at` names the unit's and the flag's places in the record, for the warnings a soft problem gets. */
export function resultElements(out: ResultBuilder, r: WrittenResult, at: { unit: string; flag: string }): ResultElements {
  const unit = r.unit?.trim() || undefined;
  const unknownUnit = (u: string): void => out.warn(at.unit, `unit '${u}' has no UCUM code; kept as text`);
  const numeric = typeof r.value === 'number' ? { value: r.value } : numericResult(r.value);
  // A text result (阴性, 1:40, 见附件) is a legal result, kept as the LIS wrote it.
  const value: ResultElements = numeric
    ? { valueQuantity: { ...quantity(numeric.value, unit, unknownUnit), ...(numeric.comparator && { comparator: numeric.comparator }) } }
    : { valueString: String(r.value) };
  const flagText = r.flag?.trim();
  const flag = flagText ? interpretation(flagText) : undefined;
  if (flagText && !flag) out.warn(at.flag, `flag '${r.flag}' is not an abnormal flag this gateway knows; left out`);
  // The range is in the value's unit; an unknown unit was warned about once already.
  const inUnit = (v: number): Quantity => quantity(v, unit, () => undefined);
  return {
    ...value,
    ...(flag && { interpretation: [flag] }),
    ...(r.range?.trim() && { referenceRange: [referenceRange(r.range, inUnit)] }),
  };
}
