/**
 * HL7 v2 DTM/TS values (`YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`) as FHIR date / dateTime.
 * Senders in the consortium also write `YYYY-MM-DD[ HH:mm[:ss]]`, which is read the same way.
 */

const TS = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?(?:([+-])(\d{2})(\d{2}))?$/;
const DASHED = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/** China Standard Time: the facilities' clocks, no daylight saving. */
const LOCAL_OFFSET = '+08:00';

/**
 * A FHIR date (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) or dateTime (seconds and offset always
 * present, as FHIR requires once a time is given; +08:00 when the sender gave none), or
 * undefined when the value is not a real date and time.
 */
export function hl7DateTime(raw: string): string | undefined {
  const m = TS.exec(raw) ?? DASHED.exec(raw);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, sign, oh, om] = m;
  if (y === '0000') return undefined;
  if (mo === undefined) return y;
  if (+mo < 1 || +mo > 12) return undefined;
  if (d === undefined) return `${y}-${mo}`;
  const date = new Date(Date.UTC(+y, +mo - 1, +d));
  if (date.getUTCDate() !== +d || date.getUTCMonth() !== +mo - 1) return undefined;
  if (h === undefined) return `${y}-${mo}-${d}`;
  if (+h > 23 || (mi !== undefined && +mi > 59) || (s !== undefined && +s > 59)) return undefined;
  if (sign !== undefined && (+oh > 14 || +om > 59)) return undefined;
  const offset = sign === undefined ? LOCAL_OFFSET : `${sign}${oh}:${om}`;
  return `${y}-${mo}-${d}T${h}:${mi ?? '00'}:${s ?? '00'}${frac ? `.${frac}` : ''}${offset}`;
}

/** The date part only (birth dates): the time and offset of a DTM are dropped. */
export function hl7Date(raw: string): string | undefined {
  return hl7DateTime(raw)?.slice(0, 10);
}

/** FHIR `instant` needs a time; a date-only value has none. */
export function isInstant(dateTime: string): boolean {
  return dateTime.length > 10;
}
