/**
 * What the index keeps of a facility Patient: the normalised fields it compares and the
 * display values the golden record is built from. Kept beside the link, so matching and
 * survivorship never re-read the Patient resources.
 */
import type { Patient } from '@medplum/fhirtypes';
import { isUnverified, SYSTEMS } from '../mappers/identifiers';
import { fuzzySyllables, isHanName, nameSyllables, normalizeAddress, normalizeIdNumber, normalizeName, normalizePhone } from './normalize';

export interface PersonFeatures {
  /** Name as written (for the golden record) and normalised (for comparison). */
  name?: string;
  nameKey?: string;
  syllables?: string[];
  fuzzy?: string[];
  gender?: 'male' | 'female';
  birthDate?: string;
  /** A 居民身份证号 that passes its checks (18 digits). */
  idNumber?: string;
  /** One that fails them: kept for the record, never compared. */
  idNumberUnverified?: string;
  healthCard?: string;
  insuranceCard?: string;
  phones: string[];
  address?: string;
  addressKey?: string;
  /** The facility Patient's meta.lastUpdated: the more recent registration wins ties. */
  updated?: string;
  active: boolean;
}

export function featuresOf(patient: Patient): PersonFeatures {
  const f: PersonFeatures = { phones: [], active: patient.active !== false, updated: patient.meta?.lastUpdated };
  const name = displayName(patient);
  if (name) {
    const key = normalizeName(name);
    if (key) {
      f.name = name;
      f.nameKey = key;
      f.syllables = nameSyllables(key);
      f.fuzzy = isHanName(key) ? fuzzySyllables(f.syllables) : f.syllables;
    }
  }
  if (patient.gender === 'male' || patient.gender === 'female') f.gender = patient.gender;
  if (patient.birthDate && /^\d{4}-\d{2}-\d{2}$/.test(patient.birthDate)) f.birthDate = patient.birthDate;
  for (const id of patient.identifier ?? []) {
    if (!id.value) continue;
    if (id.system === SYSTEMS.idCard) {
      const n = normalizeIdNumber(id.value);
      if (n.valid && !isUnverified(id)) f.idNumber ??= n.value;
      else f.idNumberUnverified ??= n.value;
    } else if (id.system === SYSTEMS.healthCard) f.healthCard ??= id.value.trim();
    else if (id.system === SYSTEMS.insuranceCard) f.insuranceCard ??= id.value.trim();
  }
  for (const t of patient.telecom ?? []) {
    if (t.system !== 'phone' || !t.value) continue;
    const phone = normalizePhone(t.value);
    if (phone && !f.phones.includes(phone)) f.phones.push(phone);
  }
  const address = patient.address?.find((a) => a.use !== 'old') ?? patient.address?.[0];
  const addressText = address && (address.text ?? [...(address.line ?? []), address.district, address.city, address.state].filter(Boolean).join(''));
  if (addressText) {
    f.address = addressText;
    f.addressKey = normalizeAddress(addressText);
  }
  return f;
}

/** The official name's text, or its parts in Chinese order (family name first, no space). */
function displayName(patient: Patient): string | undefined {
  const name = patient.name?.find((n) => n.use === 'official') ?? patient.name?.find((n) => n.use !== 'old') ?? patient.name?.[0];
  if (!name) return undefined;
  if (name.text) return name.text;
  const family = name.family ?? '';
  const given = (name.given ?? []).join(isHanName(family) ? '' : ' ');
  const joined = isHanName(family + given) ? `${family}${given}` : `${given} ${family}`;
  return joined.trim() || undefined;
}

/** Two feature sets that compare and survive identically (an update that changed nothing the index uses). */
export function sameFeatures(a: PersonFeatures, b: PersonFeatures): boolean {
  // Sorted keys: features read back from jsonb do not keep their insertion order.
  const canonical = (f: PersonFeatures): string => {
    const { updated: _u, ...rest } = f;
    return JSON.stringify(rest, Object.keys(rest).sort());
  };
  return canonical(a) === canonical(b);
}
