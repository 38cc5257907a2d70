/**
 * Units as the consortium's LIS and HIS write them, to UCUM. The sender's text stays in
 * Quantity.unit; the code is what makes values comparable across facilities. One table for
 * every source format, so a unit learnt from one feed is known to all.
 */
import type { Quantity } from '@medplum/fhirtypes';
import { UCUM } from './systems';

/** UCUM code, then the spellings seen for it (lower case: lookups are case-insensitive). */
const UCUM_UNITS: readonly (readonly [string, readonly string[]])[] = [
  ['mmol/L', ['mmol/l']],
  ['umol/L', ['umol/l', 'μmol/l', 'µmol/l']],
  ['nmol/L', ['nmol/l']],
  ['pmol/L', ['pmol/l']],
  ['mol/L', ['mol/l']],
  ['g/L', ['g/l']],
  ['g/dL', ['g/dl']],
  ['mg/L', ['mg/l']],
  ['mg/dL', ['mg/dl']],
  ['ug/L', ['ug/l', 'μg/l', 'µg/l']],
  ['ng/mL', ['ng/ml']],
  ['pg/mL', ['pg/ml']],
  ['ug/mL', ['ug/ml', 'μg/ml', 'µg/ml']],
  ['U/L', ['u/l']],
  ['[IU]/L', ['iu/l', '[iu]/l']],
  ['[IU]/mL', ['iu/ml', '[iu]/ml']],
  ['m[IU]/L', ['miu/l', 'm[iu]/l']],
  ['m[IU]/mL', ['miu/ml', 'm[iu]/ml']],
  ['u[IU]/mL', ['uiu/ml', 'μiu/ml', 'µiu/ml', 'u[iu]/ml']],
  ['%', ['%']],
  ['10*9/L', ['10*9/l', '10^9/l', 'x10^9/l', '×10^9/l', '10e9/l', '10⁹/l', '×10⁹/l', 'g/l(10^9)']],
  ['10*12/L', ['10*12/l', '10^12/l', 'x10^12/l', '×10^12/l', '10e12/l', '10¹²/l', '×10¹²/l']],
  ['10*6/L', ['10*6/l', '10^6/l', 'x10^6/l', '×10^6/l']],
  ['fL', ['fl']],
  ['pg', ['pg']],
  ['mm[Hg]', ['mmhg', 'mm[hg]']],
  ['/min', ['/min', 'bpm', '次/分', '次/分钟', 'beats/min']],
  ['mm/h', ['mm/h', 'mm/hr']],
  ['ms', ['ms']],
  ['s', ['s', 'sec', '秒']],
  ['min', ['min', '分钟']],
  ['h', ['h', 'hr', '小时']],
  ['d', ['d', 'day', 'days', '天', '日']],
  ['wk', ['wk', 'w', 'week', 'weeks', '周']],
  ['mo', ['mo', 'month', 'months', '月']],
  ['kg', ['kg', '公斤']],
  ['g', ['g', '克']],
  ['mg', ['mg', '毫克']],
  ['ug', ['ug', 'μg', 'µg', '微克']],
  ['mL', ['ml', '毫升']],
  ['L', ['l']],
  ['cm', ['cm', '厘米']],
  ['mm', ['mm']],
  ['kg/m2', ['kg/m2', 'kg/m^2', 'kg/㎡']],
  ['mL/min/{1.73_m2}', ['ml/min/1.73m2', 'ml/min/1.73m^2', 'ml/min/1.73㎡', 'ml/min/{1.73_m2}']],
  ['Cel', ['cel', '℃', '°c']],
  ['[IU]', ['iu', '[iu]']],
  ['U', ['u', '单位']],
  ['{ratio}', ['ratio']],
  // Units that count forms or packs (片 tablets, 粒 capsules, 盒 boxes ...), as UCUM annotations.
  ['{tbl}', ['片', 'tab', 'tablet', 'tablets', '{tbl}']],
  ['{capsule}', ['粒', 'cap', 'capsule', 'capsules', '{capsule}']],
  ['{packet}', ['袋', '{packet}']],
  ['{bottle}', ['瓶', '{bottle}']],
  ['{box}', ['盒', 'box', '{box}']],
];

const UNITS = new Map(UCUM_UNITS.flatMap(([code, spellings]) => spellings.map((s) => [s, code] as const)));

/** The UCUM code of a unit as written, or undefined when this table does not know it. */
export function ucumCode(unit: string): string | undefined {
  return UNITS.get(unit.trim().toLowerCase());
}

/**
 * A Quantity of `value` in the unit as written. A unit the table cannot code is kept as text
 * and reported through `unknownUnit`, so the sender's quality view shows it.
 */
export function quantity(value: number, written: string | undefined, unknownUnit: (unit: string) => void): Quantity {
  const unit = written?.trim();
  if (!unit) return { value };
  const code = ucumCode(unit);
  if (code === undefined) {
    unknownUnit(unit);
    return { value, unit };
  }
  return { value, unit, system: UCUM, code };
}

/** A Quantity in a UCUM unit the mapper itself chose (mm[Hg], kg, d ...). */
export function ucumQuantity(value: number, code: string): Quantity {
  return { value, unit: code, system: UCUM, code };
}
