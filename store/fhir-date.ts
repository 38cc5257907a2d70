/**
 * FHIR date / dateTime / instant values as half-open UTC ranges [lo, hi), sized by the value's
 * precision: `2024` is the whole year, `2024-03-05T10:00+08:00` one minute, a value with
 * milliseconds one millisecond. Values without a time zone are taken as UTC; the index and the
 * search side both parse through here, so they agree.
 */
export interface DateRange { lo: string; hi: string } // ISO 'YYYY-MM-DDTHH:mm:ss.sssZ', or '-infinity' / 'infinity'

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil; pure arithmetic, any year). */
function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y -= 1;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

/** Milliseconds since the epoch for a UTC calendar date and time. */
function utc(y: number, m: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  return daysFromCivil(y, m, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000 + ms;
}

const YEAR_1 = utc(1, 1, 1);
const YEAR_10000 = utc(10000, 1, 1);

/** 'YYYY-MM-DDTHH:mm:ss.sssZ' for years 0001-9999 (Date#toISOString is several times slower). */
function format(t: number): string {
  const days = Math.floor(t / DAY_MS);
  let rest = (t - days * DAY_MS) | 0; // small integers from here on, so V8 keeps to int32 arithmetic
  // civil_from_days
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = (z - era * 146_097) | 0;
  const yoe = ((doe - ((doe / 1460) | 0) + ((doe / 36_524) | 0) - ((doe / 146_096) | 0)) / 365) | 0;
  const doy = (doe - (365 * yoe + ((yoe / 4) | 0) - ((yoe / 100) | 0))) | 0;
  const mp = ((5 * doy + 2) / 153) | 0;
  const d = (doy - (((153 * mp + 2) / 5) | 0) + 1) | 0;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = (yoe + era * 400 + (m <= 2 ? 1 : 0)) | 0;
  const ms = rest % 1000;
  rest = (rest / 1000) | 0;
  const s = rest % 60;
  rest = (rest / 60) | 0;
  const mi = rest % 60;
  const h = (rest / 60) | 0;
  // One flat string from char codes: cheaper than concatenating pieces (or Date#toISOString).
  return String.fromCharCode(
    48 + ((y / 1000) | 0), 48 + (((y / 100) | 0) % 10), 48 + (((y / 10) | 0) % 10), 48 + (y % 10), 45,
    48 + ((m / 10) | 0), 48 + (m % 10), 45, 48 + ((d / 10) | 0), 48 + (d % 10), 84,
    48 + ((h / 10) | 0), 48 + (h % 10), 58, 48 + ((mi / 10) | 0), 48 + (mi % 10), 58, 48 + ((s / 10) | 0), 48 + (s % 10), 46,
    48 + ((ms / 100) | 0), 48 + (((ms / 10) | 0) % 10), 48 + (ms % 10), 90,
  );
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** ISO form of an instant; outside years 0001-9999 a bound becomes open (lo) or is clamped (hi). */
function iso(t: number, isHi = false): string {
  if (t < YEAR_1) return isHi ? format(YEAR_1) : '-infinity';
  if (t >= YEAR_10000) return isHi ? 'infinity' : format(YEAR_10000 - 1);
  return format(t);
}

const range = (lo: number, hi: number): DateRange => ({ lo: iso(lo), hi: iso(hi, true) });

/** The number in value[i, i + n) if those are all ASCII digits, else -1. */
function digits(value: string, i: number, n: number): number {
  let x = 0;
  for (let k = i; k < i + n; k++) {
    const c = value.charCodeAt(k) - 48;
    if (c < 0 || c > 9) return -1; // also NaN past the end
    x = x * 10 + c;
  }
  return x;
}

/** The range a FHIR date, dateTime or instant covers; undefined if the value is not valid. */
export function parseDateRange(value: string): DateRange | undefined {
  if (typeof value !== 'string') return undefined;
  const len = value.length;
  const y = digits(value, 0, 4);
  if (y < 1) return undefined;
  if (len === 4) return range(utc(y, 1, 1), utc(y + 1, 1, 1));
  if (value[4] !== '-') return undefined;
  const mo = digits(value, 5, 2);
  if (mo < 1 || mo > 12) return undefined;
  if (len === 7) return range(utc(y, mo, 1), mo === 12 ? utc(y + 1, 1, 1) : utc(y, mo + 1, 1));
  if (value[7] !== '-') return undefined;
  const d = digits(value, 8, 2);
  if (d < 1 || d > daysInMonth(y, mo)) return undefined;
  if (len === 10) return range(utc(y, mo, d), utc(y, mo, d) + DAY_MS);

  // THH:mm[:ss[.fff…]][Z|±hh:mm]
  if (value[10] !== 'T' || value[13] !== ':') return undefined;
  const h = digits(value, 11, 2);
  const mi = digits(value, 14, 2);
  if (h < 0 || h > 23 || mi < 0 || mi > 59) return undefined;
  let i = 16;
  let s = 0;
  let ms = 0;
  let width = 60_000;
  if (value[i] === ':') {
    s = digits(value, i + 1, 2);
    if (s < 0 || s > 59) return undefined;
    width = 1000;
    i += 3;
    if (value[i] === '.') {
      // .5 is a tenth of a second, .50 a hundredth, three or more digits a millisecond
      let j = i + 1;
      while (j < len && value.charCodeAt(j) >= 48 && value.charCodeAt(j) <= 57) j++;
      const n = j - i - 1;
      if (n === 0) return undefined;
      ms = digits(value, i + 1, Math.min(n, 3)) * (n === 1 ? 100 : n === 2 ? 10 : 1);
      width = n >= 3 ? 1 : n === 2 ? 10 : 100;
      i = j;
    }
  }
  let offsetMin = 0;
  if (i === len) {
    // no time zone: taken as UTC
  } else if (value[i] === 'Z' && i + 1 === len) {
    // UTC
  } else if ((value[i] === '+' || value[i] === '-') && i + 6 === len && value[i + 3] === ':') {
    const oh = digits(value, i + 1, 2);
    const om = digits(value, i + 4, 2);
    if (oh < 0 || oh > 14 || om < 0 || om > 59) return undefined;
    offsetMin = (value[i] === '-' ? -1 : 1) * (oh * 60 + om);
  } else return undefined;
  const lo = utc(y, mo, d, h, mi, s, ms) - offsetMin * 60_000;
  return range(lo, lo + width);
}
