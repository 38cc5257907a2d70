/**
 * The one normal form for string search, used both when indexing and when searching, so the two
 * can never disagree. NFKC folds full-width forms (ＡＢＣ１２３, full-width punctuation) into
 * ASCII; NFD plus stripping combining marks removes accents (José -> jose); Chinese characters
 * pass through untouched, so starts-with works on 王小明 as on any Latin name.
 */
export function normalizeString(value: string): string {
  return value
    .normalize('NFKC')
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .normalize('NFC')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Longest indexed string or token value, in UTF-16 units: at most 1,600 bytes of UTF-8, so a
 * token's code and system together stay under PostgreSQL's btree entry limit (2,704 bytes)
 * that one 20 kB value used to break as a failed write. Longer values are indexed, and
 * searched, by this prefix.
 */
export const MAX_INDEXED_LENGTH = 400;

export function indexable(value: string): string {
  if (value.length <= MAX_INDEXED_LENGTH) return value;
  const end = MAX_INDEXED_LENGTH - (/[\ud800-\udbff]/.test(value[MAX_INDEXED_LENGTH - 1]) ? 1 : 0);
  return value.slice(0, end);
}
