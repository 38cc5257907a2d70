/**
 * Units as the consortium's LIS and HIS write them, to UCUM. The sender's text stays in
 * Quantity.unit; the code is what makes values comparable across facilities.
 */
import type { Quantity } from '@medplum/fhirtypes';
import type { Er7Field } from './er7';
import { UCUM } from '../common/systems';

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
  ['kg', ['kg']],
  ['g', ['g']],
  ['mg', ['mg']],
  ['ug', ['ug', 'μg', 'µg']],
  ['mL', ['ml']],
  ['L', ['l']],
  ['cm', ['cm']],
  ['mm', ['mm']],
  ['kg/m2', ['kg/m2', 'kg/m^2', 'kg/㎡']],
  ['mL/min/{1.73_m2}', ['ml/min/1.73m2', 'ml/min/1.73m^2', 'ml/min/1.73㎡', 'ml/min/{1.73_m2}']],
  ['Cel', ['cel', '℃', '°c']],
  ['[IU]', ['iu', '[iu]']],
  ['U', ['u']],
  ['{ratio}', ['ratio']],
  // Dose units that count forms (片 tablets, 粒 capsules ...), as UCUM annotations, as the rest of the gateway writes them.
  ['{tbl}', ['片', 'tab', 'tablet', 'tablets', '{tbl}']],
  ['{capsule}', ['粒', 'cap', 'capsule', 'capsules', '{capsule}']],
  ['{packet}', ['袋', '{packet}']],
  ['{bottle}', ['瓶', '{bottle}']],
];

const table = (rows: readonly (readonly [string, readonly string[]])[], system: string): Map<string, { system: string; code: string }> =>
  new Map(rows.flatMap(([code, spellings]) => spellings.map((s) => [s, { system, code }] as const)));

const UNITS = table(UCUM_UNITS, UCUM);

/** The coded unit for a unit as written, or undefined when this table does not know it. */
export function unitCode(unit: string): { system: string; code: string } | undefined {
  return UNITS.get(unit.trim().toLowerCase());
}

/** A unit as a CE carries it: code (.1), text (.2), coding system (.3). */
export interface UnitField {
  code?: string;
  text?: string;
  system?: string;
}

export function unitOf(f: Er7Field): UnitField {
  return { code: f.get(1), text: f.get(2), system: f.get(3) };
}

/**
 * A Quantity; `unknownUnit` is called for a unit that cannot be coded (it is kept as text).
 * A unit the sender marks as UCUM (CE.3 'UCUM') is taken as the code it is.
 */
export function quantity(value: number, unit: UnitField, unknownUnit: (unit: string) => void): Quantity {
  const written = unit.text ?? unit.code;
  if (written === undefined) return { value };
  const coded =
    unit.code !== undefined && unit.system?.toUpperCase() === 'UCUM'
      ? { system: UCUM, code: unit.code }
      : unitCode(unit.code ?? written) ?? (unit.text !== undefined ? unitCode(unit.text) : undefined);
  if (!coded) {
    unknownUnit(written);
    return { value, unit: written };
  }
  return { value, unit: written, system: coded.system, code: coded.code };
}
