/**
 * 居民身份证号 (resident ID number, GB 11643): 18 characters, digits 7-14 the birth date,
 * digit 17 odd for male and even for female, the last a check character (ISO 7064 MOD 11-2).
 * The 15-digit form issued before 1999 has a 2-digit year and no check character.
 */

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

/** The check character ('0'-'9' or 'X') of the first 17 digits. */
export function idCardCheckDigit(first17: string): string {
  if (!/^\d{17}$/.test(first17)) throw new RangeError(`expected 17 digits, got '${first17}'`);
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (first17.charCodeAt(i) - 48) * WEIGHTS[i];
  return CHECK[sum % 11];
}

export type IdCardCheck =
  | { valid: true; normalized: string; birthDate: string; sex: 'male' | 'female'; region: string; legacy: boolean }
  | { valid: false; reason: string };

/**
 * Checks an ID number: form, calendar date, check character. A 15-digit legacy number is
 * upgraded to its 18-digit form (century 19, computed check character). `x` counts as `X`;
 * spaces are ignored. The reason never quotes the number.
 */
export function checkIdCard(raw: string): IdCardCheck {
  let id = raw.replace(/\s+/g, '').toUpperCase();
  let legacy = false;
  if (/^\d{15}$/.test(id)) {
    const first17 = `${id.slice(0, 6)}19${id.slice(6, 15)}`;
    id = first17 + idCardCheckDigit(first17);
    legacy = true;
  }
  if (!/^\d{17}[\dX]$/.test(id)) return { valid: false, reason: 'not 18 digits (the last may be X) or 15 digits' };
  const y = Number(id.slice(6, 10));
  const m = Number(id.slice(10, 12));
  const d = Number(id.slice(12, 14));
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d || y < 1880) {
    return { valid: false, reason: 'digits 7-14 are not a calendar date' };
  }
  if (idCardCheckDigit(id.slice(0, 17)) !== id[17]) return { valid: false, reason: 'check character does not match' };
  return {
    valid: true,
    normalized: id,
    birthDate: `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`,
    sex: (id.charCodeAt(16) - 48) % 2 === 1 ? 'male' : 'female',
    region: id.slice(0, 6),
    legacy,
  };
}

export function isValidIdCard(id: string): boolean {
  return /^\d{17}[\dX]$/.test(id) && checkIdCard(id).valid;
}

/** Masks all but the region and the last character, for logs at debug level and messages. */
export function maskIdCard(id: string): string {
  return id.length > 7 ? `${id.slice(0, 3)}${'*'.repeat(id.length - 4)}${id.slice(-1)}` : '***';
}
