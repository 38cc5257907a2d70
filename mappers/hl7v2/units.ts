/**
 * Units as the consortium's LIS and HIS write them, to UCUM. The sender's text stays in
 * Quantity.unit; the code is what makes values comparable across facilities. The table is
 * mappers/common/units.ts; this file reads it from HL7 CE fields.
 */
import type { Quantity } from '@medplum/fhirtypes';
import type { Er7Field } from './er7';
import { UCUM } from '../common/systems';
import { ucumCode } from '../common/units';

/** The coded unit for a unit as written (the table all source formats share), or undefined when it is not known. */
export function unitCode(unit: string): { system: string; code: string } | undefined {
  const code = ucumCode(unit);
  return code === undefined ? undefined : { system: UCUM, code };
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
