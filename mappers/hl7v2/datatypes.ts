/** HL7 v2 composite data types shared by several segments, as FHIR datatypes. */
import type { Identifier, Practitioner, Reference } from '@medplum/fhirtypes';
import { canonicalSystem } from '../identifiers';
import type { Er7Field } from './er7';
import type { ResultBuilder } from '../common/result';
import { V2_0203 } from '../common/systems';

/**
 * The system an assigning authority (HD in CX.4 / EI.2-4) names: its universal id as a URN
 * when it is an ISO OID, through the identifier aliases. Undefined when it names none.
 */
export function authoritySystem(universalId: string | undefined, universalIdType: string | undefined): string | undefined {
  if (!universalId) return undefined;
  const type = universalIdType?.toUpperCase();
  if (type === 'ISO' || (type === undefined && OID.test(universalId))) return canonicalSystem(`urn:oid:${universalId}`);
  if (type === 'URI' || type === 'URL') return canonicalSystem(universalId);
  return undefined;
}
const OID = /^[0-2](?:\.(?:0|[1-9]\d*))+$/;

/** v2 table 0203 identifier type as an Identifier.type. */
export function identifierType(code: string, text?: string): Identifier['type'] {
  return { coding: [{ system: V2_0203, code }], ...(text && { text }) };
}

/** v2 table 0203 types of order numbers, and the kind of local system each lives in. */
const ORDER_NUMBER_KINDS = { PLAC: 'placer-order', FILL: 'filler-order', PGN: 'placer-group' } as const;

/**
 * An order number (EI: .1 entity id, .2 namespace, .3 universal id, .4 its type): its system
 * is the universal id when given, else the facility's local system for this kind of number.
 */
export function orderIdentifier(f: Er7Field, type: keyof typeof ORDER_NUMBER_KINDS, out: ResultBuilder): Identifier | undefined {
  const value = f.get(1);
  if (value === undefined) return undefined;
  const system = authoritySystem(f.get(3), f.get(4)) ?? out.localSystem(ORDER_NUMBER_KINDS[type]);
  return { use: 'official', type: identifierType(type), system, value };
}

/**
 * A person named in an XCN (ordering provider, attending doctor ...): a display-only
 * reference, with the facility's staff number as its identifier. Chinese names are family
 * (.2) then given (.3) without a space; a single component is the full name.
 */
export function practitioner(f: Er7Field, out: ResultBuilder): Reference<Practitioner> | undefined {
  const id = f.get(1);
  const display = personName(f.get(2), f.get(3));
  if (id === undefined && display === undefined) return undefined;
  return {
    ...(id !== undefined && { identifier: { system: out.localSystem('practitioner'), value: id } }),
    ...(display !== undefined && { display }),
  };
}

const LATIN_END = /[A-Za-z]$/;
const LATIN_START = /^[A-Za-z]/;

/** 王 + 小明 = 王小明; WANG + XIAOMING = WANG XIAOMING. */
export function personName(family: string | undefined, given: string | undefined): string | undefined {
  if (family === undefined || given === undefined) return family ?? given;
  return LATIN_END.test(family) && LATIN_START.test(given) ? `${family} ${given}` : family + given;
}
