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
