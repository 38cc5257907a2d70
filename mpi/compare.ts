/**
 * Per-field comparators and the Fellegi-Sunter score of a pair of registrations. Each
 * comparator answers a level (or nothing, when either side lacks the field: absence is no
 * evidence either way); the rules give each level its weight.
 */
import { CmpStr } from 'cmpstr';
import type { PersonFeatures } from './features';
import { swappedDate } from './normalize';
import type { MatchRules } from './rules';

export const FIELD_LEVELS = {
  idNumber: ['exact', 'different'],
  healthCard: ['exact', 'different'],
  name: ['exact', 'phonetic', 'close', 'different'],
  birthDate: ['exact', 'transposed', 'typo', 'different'],
  gender: ['exact', 'different'],
  phone: ['exact', 'different'],
  address: ['exact', 'close', 'different'],
} as const;

export type Field = keyof typeof FIELD_LEVELS;
export type Levels = Partial<Record<Field, string>>;

const jaroWinkler = CmpStr.create({ metric: 'jaroWinkler' });

type Comparator = (a: PersonFeatures, b: PersonFeatures, rules: MatchRules) => string | undefined;

const COMPARATORS: Record<Field, Comparator> = {
  // Only numbers that pass their checks are compared: a failed one is a typo, not evidence.
  idNumber: (a, b) => (a.idNumber && b.idNumber ? (a.idNumber === b.idNumber ? 'exact' : 'different') : undefined),
  healthCard: (a, b) => (a.healthCard && b.healthCard ? (a.healthCard === b.healthCard ? 'exact' : 'different') : undefined),
  name: compareNames,
  birthDate: (a, b) => (a.birthDate && b.birthDate ? compareDates(a.birthDate, b.birthDate) : undefined),
  gender: (a, b) => (a.gender && b.gender ? (a.gender === b.gender ? 'exact' : 'different') : undefined),
  phone: (a, b) => (a.phones.length && b.phones.length ? (a.phones.some((p) => b.phones.includes(p)) ? 'exact' : 'different') : undefined),
  address: (a, b, rules) => {
    if (!a.addressKey || !b.addressKey) return undefined;
    if (a.addressKey === b.addressKey) return 'exact';
    return jaroWinkler.compare(a.addressKey, b.addressKey) >= rules.similarity.addressJaroWinkler ? 'close' : 'different';
  },
};

/**
 * exact: the same characters once normalised (traditional, width, spacing); phonetic: the
 * same pinyin (homophones from a pinyin input method); close: the same once regional
 * confusions are folded, or a long (transliterated) or Latin name within a Jaro-Winkler
 * threshold. A Chinese given name with a different syllable is a different name: twins are
 * named 子涵 and 子轩, so string similarity alone would join them.
 */
function compareNames(a: PersonFeatures, b: PersonFeatures, rules: MatchRules): string | undefined {
  if (!a.nameKey || !b.nameKey) return undefined;
  if (a.nameKey === b.nameKey) return 'exact';
  const sa = a.syllables ?? [];
  const sb = b.syllables ?? [];
  if (sa.length > 0 && sa.join(' ') === sb.join(' ')) return 'phonetic';
  if ((a.fuzzy ?? []).join(' ') === (b.fuzzy ?? []).join(' ') && sa.length > 0) return 'close';
  const latin = sa.length === 1 && sb.length === 1 && /^[a-z]+$/.test(sa[0] + sb[0]);
  if (latin && jaroWinkler.compare(sa[0], sb[0]) >= rules.similarity.latinNameJaroWinkler) return 'close';
  if (Math.min([...a.nameKey].length, [...b.nameKey].length) >= 4 && jaroWinkler.compare(a.nameKey, b.nameKey) >= rules.similarity.nameCharactersJaroWinkler) return 'close';
  return 'different';
}

/** transposed: day and month swapped; typo: one digit differs, or two adjacent digits swapped. */
function compareDates(a: string, b: string): string {
  if (a === b) return 'exact';
  if (swappedDate(a) === b) return 'transposed';
  const da = a.replace(/-/g, '');
  const db = b.replace(/-/g, '');
  const diff = [...da].map((c, i) => (c === db[i] ? -1 : i)).filter((i) => i >= 0);
  if (diff.length === 1) return 'typo';
  if (diff.length === 2 && diff[1] === diff[0] + 1 && da[diff[0]] === db[diff[1]] && da[diff[1]] === db[diff[0]]) return 'typo';
  return 'different';
}

export interface PairScore {
  score: number;
  levels: Levels;
  /** The autoLinkRequires rule the pair satisfies, if any: without one it cannot be linked automatically. */
  rule?: string;
  /** The neverAutoLink rule the pair trips, if any. */
  veto?: string;
}

export function scorePair(a: PersonFeatures, b: PersonFeatures, rules: MatchRules): PairScore {
  const levels: Levels = {};
  const weight: Partial<Record<Field, number>> = {};
  for (const field of Object.keys(COMPARATORS) as Field[]) {
    const level = COMPARATORS[field](a, b, rules);
    if (level === undefined) continue;
    levels[field] = level;
    weight[field] = rules.weights[field][level];
  }
  let score = 0;
  const grouped = new Set<Field>();
  for (const g of rules.groups) {
    const ws = g.fields.map((f) => weight[f]).filter((w): w is number => w !== undefined);
    g.fields.forEach((f) => grouped.add(f));
    if (ws.length === 0) continue;
    const best = Math.max(...ws);
    score += best > 0 ? best : ws.reduce((s, w) => s + w, 0);
  }
  for (const [f, w] of Object.entries(weight) as [Field, number][]) if (!grouped.has(f)) score += w;
  const has = (f: Field, ok: string[]): boolean => levels[f] !== undefined && ok.includes(levels[f]!);
  const rule = rules.autoLinkRequires.find((r) => (Object.entries(r.all) as [Field, string[]][]).every(([f, ok]) => has(f, ok)))?.rule;
  const veto = rules.neverAutoLink.find((r) => (Object.entries(r.any) as [Field, string[]][]).some(([f, bad]) => has(f, bad)))?.rule;
  return { score: Math.round(score * 100) / 100, levels, ...(rule && { rule }), ...(veto && { veto }) };
}

export type Verdict = 'MATCH' | 'POSSIBLE_MATCH' | 'NO_MATCH';

/** Auto-link needs the score, one of the required agreements and no veto; else, above review, a person decides. */
export function verdict(s: PairScore, rules: MatchRules): Verdict {
  if (s.score >= rules.thresholds.autoLink && s.rule && !s.veto) return 'MATCH';
  if (s.score >= rules.thresholds.review) return 'POSSIBLE_MATCH';
  return 'NO_MATCH';
}
