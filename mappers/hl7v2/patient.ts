/** PID to Patient. */
import type { Address, ContactPoint, HumanName, Identifier, Patient } from '@medplum/fhirtypes';
import { idCardIdentifier, mrnIdentifier, SYSTEMS } from '../identifiers';
import { MappingError } from '../types';
import { authoritySystem, identifierType, personName } from './datatypes';
import type { Er7Field, Er7Message, Er7Segment } from './er7';
import type { ResultBuilder } from '../common/result';

type IdKind = 'mrn' | 'idCard' | 'healthCard' | 'insuranceCard';

/** CX.5 identifier types (v2 table 0203, and NNCHN for China's national person number) by kind. */
const ID_TYPES: Readonly<Record<string, IdKind>> = {
  MR: 'mrn',
  PI: 'mrn',
  NI: 'idCard',
  NNCHN: 'idCard',
  HC: 'healthCard',
  MC: 'insuranceCard',
  SN: 'insuranceCard',
};
const KIND_BY_SYSTEM = new Map<string, IdKind>([
  [SYSTEMS.idCard, 'idCard'],
  [SYSTEMS.healthCard, 'healthCard'],
  [SYSTEMS.insuranceCard, 'insuranceCard'],
]);
const CARD_TYPES: Readonly<Record<'healthCard' | 'insuranceCard', [string, string]>> = {
  healthCard: ['HC', '居民健康卡'],
  insuranceCard: ['MC', '医保卡'],
};

/** HL7 table 0001 and GB/T 2261.1. */
const GENDER: Readonly<Record<string, Patient['gender']>> = {
  M: 'male',
  F: 'female',
  O: 'other',
  A: 'other',
  U: 'unknown',
  N: 'unknown',
  '1': 'male',
  '2': 'female',
  '0': 'unknown',
  '9': 'unknown',
};

const NAME_USE: Readonly<Record<string, HumanName['use']>> = { L: 'official', D: 'usual', M: 'maiden', N: 'nickname' };
const PHONE_USE: Readonly<Record<string, ContactPoint['use']>> = { PRN: 'home', WPN: 'work', ORN: 'home', VHN: 'temp' };
const ADDRESS_USE: Readonly<Record<string, Address['use']>> = { H: 'home', B: 'work', O: 'work', C: 'temp' };
/** Mainland China mobile numbers. */
const MOBILE = /^1[3-9]\d{9}$/;

export interface PatientRef {
  /** `Patient/<id>` */
  reference: string;
  mrn: string;
}

/**
 * The message's one patient (PID), added to the bundle: as the registration itself for ADT,
 * create-only for the copy that results and orders carry.
 */
export function patientOf(msg: Er7Message, out: ResultBuilder, createOnly: boolean, why: string): PatientRef & { patient: Patient } {
  const pid = msg.need('PID', why);
  const second = msg.all('PID')[1];
  if (second) throw second.error('one patient per message: this gateway does not map a second PID group', undefined, undefined, 'not-supported');
  const { patient, mrn } = patientFromPid(pid, out);
  out.add(patient, createOnly);
  return { reference: `Patient/${patient.id}`, mrn, patient };
}

/**
 * The repetition of a CX list (PID-3, MRG-1) holding this facility's MRN: typed MR/PI (and
 * not assigned by another authority), else the first untyped one that is no other kind.
 */
export function mrnOf(reps: Er7Field[], mrnSystem: string): Er7Field | undefined {
  let untyped: Er7Field | undefined;
  for (const r of reps) {
    if (r.get(1) === undefined) continue;
    const type = r.get(5)?.toUpperCase();
    const system = authorityOf(r);
    if (type !== undefined && ID_TYPES[type] === 'mrn' && (system === undefined || system === mrnSystem)) return r;
    if (type === undefined && (system === undefined || !KIND_BY_SYSTEM.has(system))) untyped ??= r;
  }
  return untyped;
}

/** CX.4 (HD): the system its universal id (.2, of type .3) names. */
const authorityOf = (r: Er7Field): string | undefined => authoritySystem(r.get(4, 2), r.get(4, 3));

function patientFromPid(pid: Er7Segment, out: ResultBuilder): { patient: Patient & { id: string }; mrn: string } {
  const reps = pid.reps(3);
  const mrnRep = mrnOf(reps, out.ctx.source.mrnSystem);
  if (!mrnRep) throw new MappingError('PID-3 holds no medical record number (a repetition typed MR, or an untyped one)', pid.at(3), 'required');
  const mrn = mrnRep.get(1)!;
  const identifier: Identifier[] = [mrnIdentifier(out.ctx.source.mrnSystem, mrn)];
  for (const r of reps) if (r !== mrnRep) addIdentifier(r, identifier, out);

  const name = pid.reps(5).map(humanName).filter((n): n is HumanName => n !== undefined);
  const sex = pid.get(8);
  const gender = sex === undefined ? undefined : GENDER[sex.toUpperCase()];
  if (sex !== undefined && gender === undefined) out.warn(pid.label(8), `sex '${sex}' is neither an HL7 (M/F/O/U) nor a GB/T 2261.1 (1/2/0/9) code; left out`);
  const birthDate = pid.date(7);
  const telecom = [...pid.reps(13).map((r) => contactPoint(r, 'home')), ...pid.reps(14).map((r) => contactPoint(r, 'work'))].filter(
    (t): t is ContactPoint => t !== undefined,
  );
  const address = pid.reps(11).map(postalAddress).filter((a): a is Address => a !== undefined);

  const patient: Patient & { id: string } = {
    resourceType: 'Patient',
    id: out.id('patient', mrn),
    meta: out.meta(),
    identifier,
    ...(name.length > 0 && { name }),
    ...(gender && { gender }),
    ...(birthDate && { birthDate }),
    ...(telecom.length > 0 && { telecom }),
    ...(address.length > 0 && { address }),
    managingOrganization: out.organization,
  };
  return { patient, mrn };
}

function addIdentifier(r: Er7Field, into: Identifier[], out: ResultBuilder): void {
  const value = r.get(1);
  if (value === undefined) return;
  const type = r.get(5)?.toUpperCase();
  const system = authorityOf(r);
  const kind = (type !== undefined ? ID_TYPES[type] : undefined) ?? (system === undefined ? undefined : KIND_BY_SYSTEM.get(system));
  if (kind === 'idCard') {
    const { identifier, warning } = idCardIdentifier(value);
    if (warning) out.warn(r.label, warning);
    into.push(identifier);
  } else if (kind === 'healthCard' || kind === 'insuranceCard') {
    const [code, text] = CARD_TYPES[kind];
    into.push({ use: 'official', type: identifierType(code, text), system: SYSTEMS[kind], value });
  } else if (kind === 'mrn') {
    // Another MRN: an old one of this facility, or another facility's (as its authority says).
    into.push({ ...mrnIdentifier(system ?? out.ctx.source.mrnSystem, value), use: 'secondary' });
  } else {
    if (system === undefined) {
      out.warn(r.label, `identifier of type '${type ?? '(none)'}' without an assigning authority OID is left out`);
      return;
    }
    into.push({ ...(type && { type: identifierType(type) }), system, value });
  }
}

/** XPN: family (.1), given (.2, then middle .3), name type (.7). One component alone is the full name. */
function humanName(r: Er7Field): HumanName | undefined {
  const family = r.get(1);
  const given = [r.get(2), r.get(3)].filter((g): g is string => g !== undefined);
  if (family === undefined && given.length === 0) return undefined;
  const use = NAME_USE[r.get(7)?.toUpperCase() ?? ''];
  const text = given.length === 0 ? family! : personName(family, given.join(''))!;
  return {
    ...(use && { use }),
    text,
    ...(family !== undefined && given.length > 0 && { family }),
    ...(given.length > 0 && { given }),
  };
}

/**
 * XTN: the number from .12 (unformatted), else country/area/local (.5-.7), else the
 * deprecated formatted .1; e-mail (.4) when the equipment type (.3) says so.
 */
function contactPoint(r: Er7Field, defaultUse: 'home' | 'work'): ContactPoint | undefined {
  const equipment = r.get(3)?.toUpperCase();
  if (equipment === 'INTERNET' || equipment === 'X.400' || r.get(2)?.toUpperCase() === 'NET') {
    const email = r.get(4) ?? r.get(1);
    return email === undefined ? undefined : { system: 'email', value: email };
  }
  const value = r.get(12) ?? ([r.get(5), r.get(6), r.get(7)].filter(Boolean).join('') || r.get(1));
  if (!value) return undefined;
  const use = equipment === 'CP' || MOBILE.test(value) ? 'mobile' : (PHONE_USE[r.get(2)?.toUpperCase() ?? ''] ?? defaultUse);
  return { system: equipment === 'FX' ? 'fax' : 'phone', value, use };
}

/**
 * XAD in Chinese order: province (.4), city (.3), district (.9, county/parish), street
 * lines (.1, .2). The text is that order without spaces, as written on an envelope in China.
 */
function postalAddress(r: Er7Field): Address | undefined {
  const line = [r.get(1), r.get(2)].filter((l): l is string => l !== undefined);
  const city = r.get(3);
  const state = r.get(4);
  const postalCode = r.get(5);
  const country = r.get(6);
  const district = r.get(9);
  const text = [state, city, district, ...line].filter(Boolean).join('');
  if (!text && !postalCode) return undefined;
  const use = ADDRESS_USE[r.get(7)?.toUpperCase() ?? ''];
  return {
    ...(use && { use }),
    ...(text && { text }),
    ...(line.length > 0 && { line }),
    ...(city && { city }),
    ...(district && { district }),
    ...(state && { state }),
    ...(postalCode && { postalCode }),
    ...(country && { country }),
  };
}
