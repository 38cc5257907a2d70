/**
 * Normalisers for the patient index: what two front desks may write differently for the same
 * person is brought to one form before anything is compared.
 */
import * as OpenCC from 'opencc-js';
import { pinyin } from 'pinyin-pro';
import { checkIdCard } from '../mappers/id-card';

const toSimplified = OpenCC.Converter({ from: 't', to: 'cn' });

const HAN = /\p{Script=Han}/u;

/**
 * A name as characters to compare: traditional to simplified, full width to half width
 * (NFKC), Latin letters lower-cased, and spaces, middle dots and punctuation dropped
 * (王 小明, 王\u3000小明 and 王小明 are one name; 阿依古丽·买买提 keeps its letters, not its dot).
 */
export function normalizeName(raw: string): string {
  const simplified = HAN.test(raw) ? toSimplified(raw) : raw;
  return simplified
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s\p{P}\p{S}]+/gu, '');
}

export function isHanName(name: string): boolean {
  return HAN.test(name);
}

/**
 * Pinyin syllables without tones, reading a surname as a surname (曾 zeng, 单 shan), so that
 * homophones typed from a pinyin input method (王晓明 / 王小明) compare equal. Latin names are
 * their own letters.
 */
export function nameSyllables(normalized: string): string[] {
  if (!isHanName(normalized)) return normalized ? [normalized] : [];
  return pinyin(normalized, { toneType: 'none', type: 'array', surname: 'head', v: true, nonZh: 'removed' }).filter(Boolean);
}

/**
 * Syllables with the confusions of southern and regional speech folded together (zh/z, ch/c,
 * sh/s, n/l, hu/fu, final -ng/-n), for names written down from what was heard.
 */
export function fuzzySyllables(syllables: string[]): string[] {
  return syllables.map((s) =>
    s
      .replace(/^zh/, 'z')
      .replace(/^ch/, 'c')
      .replace(/^sh/, 's')
      .replace(/^l/, 'n')
      .replace(/^hu/, 'fu')
      .replace(/ng$/, 'n'),
  );
}

export type IdNumber = { valid: true; value: string; birthDate: string; sex: 'male' | 'female' } | { valid: false; value: string };

/**
 * A 居民身份证号, upgraded to 18 digits if it is the 15-digit legacy form. One that fails its
 * checks is kept only as a typo: it never counts as evidence.
 */
export function normalizeIdNumber(raw: string): IdNumber {
  const check = checkIdCard(raw);
  if (check.valid) return { valid: true, value: check.normalized, birthDate: check.birthDate, sex: check.sex };
  return { valid: false, value: raw.replace(/\s+/g, '').toUpperCase() };
}

/** A phone number as its national digits: +86, 0086, spaces, dashes and brackets removed. */
export function normalizePhone(raw: string): string | undefined {
  let digits = raw.replace(/\D+/g, '');
  if (digits.startsWith('0086')) digits = digits.slice(4);
  else if (digits.startsWith('86') && digits.length === 13) digits = digits.slice(2);
  return digits.length >= 7 ? digits : undefined;
}

/** An address compared as its characters alone (simplified, half width, no spaces or punctuation). */
export function normalizeAddress(raw: string): string | undefined {
  const n = normalizeName(raw);
  return n.length > 0 ? n : undefined;
}

/** `YYYY-MM-DD` with day and month swapped, when that is still a date and not the same one. */
export function swappedDate(date: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m || m[2] === m[3] || Number(m[3]) > 12) return undefined;
  return `${m[1]}-${m[3]}-${m[2]}`;
}
