/**
 * Blocking keys: a new registration is compared only with registrations sharing at least one
 * key, so a match reads a few rows of an index, never the whole population. Each key catches
 * what the others miss: no ID number (name + birth year, phone), a homophone name (pinyin),
 * a day/month swap (birth date keys are looked up swapped as well), a new phone.
 */
import type { PersonFeatures } from './features';
import { swappedDate } from './normalize';

export const BLOCKING_KEYS = ['idNumber', 'healthCard', 'phone', 'pinyinBirthYear', 'birthDateSex'] as const;
export type BlockingKey = (typeof BLOCKING_KEYS)[number];

type KeyFn = (f: PersonFeatures) => string[];

const KEYS: Record<BlockingKey, KeyFn> = {
  idNumber: (f) => (f.idNumber ? [`id:${f.idNumber}`] : []),
  healthCard: (f) => (f.healthCard ? [`hc:${f.healthCard}`] : []),
  phone: (f) => f.phones.map((p) => `ph:${p}`),
  // Folded pinyin, so that homophones and regional confusions land in one block.
  pinyinBirthYear: (f) => (f.fuzzy?.length && f.birthDate ? [`py:${f.fuzzy.join('')}:${f.birthDate.slice(0, 4)}`] : []),
  birthDateSex: (f) => (f.birthDate ? [`bd:${f.birthDate}:${f.gender ?? '-'}`] : []),
};

/** The keys a registration is filed under. */
export function blockingKeys(f: PersonFeatures, keys: readonly BlockingKey[]): string[] {
  return [...new Set(keys.flatMap((k) => KEYS[k](f)))];
}

/** The keys to look a registration up by: its own, plus its birth date read day-first. */
export function lookupKeys(f: PersonFeatures, keys: readonly BlockingKey[]): string[] {
  const own = blockingKeys(f, keys);
  const swapped = f.birthDate && keys.includes('birthDateSex') ? swappedDate(f.birthDate) : undefined;
  return swapped ? [...own, `bd:${swapped}:${f.gender ?? '-'}`] : own;
}
