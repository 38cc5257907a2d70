/** A Patient from the flat demographics a vendor JSON record or a CSV row carries. */
import type { Identifier, Patient } from '@medplum/fhirtypes';
import { localDateTime } from '../context';
import { checkIdCard } from '../id-card';
import { idCardIdentifier, mrnIdentifier, SYSTEMS } from '../identifiers';
import { formatLocation, MappingError, type SourceLocation } from '../types';
import type { ResultBuilder } from './result';
import { v2IdentifierType } from './systems';

export interface Demographics {
  /** The facility's medical record number: the Patient's id is derived from it. */
  mrn: string;
  name?: string;
  /** GB/T 2261.1 code (1 male, 2 female, 0 unknown, 9 unspecified), or 男/女 as some exports write it. */
  sex?: string;
  /** yyyy-MM-dd */
  birthDate?: string;
  /** 居民身份证号 */
  idCard?: string;
  phone?: string;
  address?: string;
  /** 医保卡号 */
  insuranceCard?: string;
  /** 居民健康卡号 */
  healthCard?: string;
}

/** Where each field was read: a JSON path, or a CSV line and column. */
export type DemographicsAt = (field: keyof Demographics) => SourceLocation;

const SEX: ReadonlyMap<string, Patient['gender']> = new Map([
  ['1', 'male'],
  ['2', 'female'],
  ['0', 'unknown'],
  ['9', 'unknown'],
  ['男', 'male'],
  ['女', 'female'],
]);
/** Mainland China mobile numbers. */
const MOBILE = /^1[3-9]\d{9}$/;

/**
 * Adds the facility's Patient and returns `Patient/<id>`. `copy` marks the demographics a
 * visit, result or prescription carries: written only while the registration has not arrived
 * (MapResult.createOnly), never over it.
 */
export function addPatient(out: ResultBuilder, d: Demographics, at: DemographicsAt, copy: boolean): string {
  const identifier: Identifier[] = [mrnIdentifier(out.ctx.source.mrnSystem, d.mrn)];
  if (d.idCard) {
    const { identifier: id, warning } = idCardIdentifier(d.idCard);
    identifier.push(id);
    if (warning) out.warn(formatLocation(at('idCard')), warning);
  }
  if (d.insuranceCard) identifier.push({ use: 'official', type: v2IdentifierType('MC', '医保卡'), system: SYSTEMS.insuranceCard, value: d.insuranceCard });
  if (d.healthCard) identifier.push({ use: 'official', type: v2IdentifierType('HC', '居民健康卡'), system: SYSTEMS.healthCard, value: d.healthCard });
  const gender = d.sex === undefined ? undefined : genderOf(d.sex, at('sex'));
  const birthDate = d.birthDate === undefined ? undefined : birthDateOf(d.birthDate, at('birthDate'));
  if (d.idCard && (gender || birthDate)) crossCheck(out, d.idCard, gender, birthDate, at);
  const patient: Patient & { id: string } = {
    resourceType: 'Patient',
    id: out.id('patient', d.mrn),
    meta: out.meta(),
    identifier,
    ...(d.name && { name: [{ use: 'official', text: d.name }] }),
    ...(d.phone && { telecom: [{ system: 'phone', value: d.phone, use: MOBILE.test(d.phone) ? 'mobile' : 'home' }] }),
    ...(gender && { gender }),
    ...(birthDate && { birthDate }),
    ...(d.address && { address: [{ use: 'home', text: d.address }] }),
    managingOrganization: out.organization,
  };
  out.add(patient, copy);
  return `Patient/${patient.id}`;
}

function genderOf(sex: string, at: SourceLocation): Patient['gender'] {
  const gender = SEX.get(sex.trim());
  if (!gender) throw new MappingError('sex is not a GB/T 2261.1 code (1, 2, 0, 9)', at, 'code-invalid');
  return gender;
}

function birthDateOf(raw: string, at: SourceLocation): string {
  const date = localDateTime(raw);
  if (!date || date.length !== 10) throw new MappingError('birth date is not a date (yyyy-MM-dd)', at, 'value');
  return date;
}

/**
 * A valid ID number encodes birth date and sex: a registration that disagrees has a typo in
 * one or the other (a birth date entered day-first ...). Kept as sent, but said, because the
 * patient index weighs both.
 */
function crossCheck(out: ResultBuilder, idCard: string, gender: Patient['gender'], birthDate: string | undefined, at: DemographicsAt): void {
  const check = checkIdCard(idCard);
  if (!check.valid) return;
  if (birthDate && birthDate !== check.birthDate) out.warn(formatLocation(at('birthDate')), 'birth date differs from the one the resident ID number encodes');
  if ((gender === 'male' || gender === 'female') && gender !== check.sex) out.warn(formatLocation(at('sex')), 'sex differs from the one the resident ID number encodes');
}
