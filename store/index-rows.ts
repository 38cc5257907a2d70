/**
 * Search index rows extracted from one resource. `p` is always `<ResourceType>.<param code>`
 * (e.g. `Observation.code`); a token's display text is indexed as a string under
 * `<ResourceType>.<code>:text` so that the `:text` modifier is an ordinary string search.
 * Dates are half-open UTC ranges [lo, hi) as ISO strings; `-infinity`/`infinity` for open ends.
 */
export interface IndexRows {
  token: TokenRow[];
  string: StringRow[];
  date: DateRow[];
  reference: ReferenceRow[];
  number: NumberRow[];
}

export interface TokenRow { p: string; system: string | null; code: string }
/** `value` is normalised (normalizeString) for ordinary search; `raw` is as written, for `:exact`. */
export interface StringRow { p: string; value: string; raw: string }
export interface DateRow { p: string; lo: string; hi: string }
export interface ReferenceRow { p: string; targetType: string; targetId: string }
export interface NumberRow { p: string; value: number; system: string | null; code: string | null }

export const emptyIndexRows = (): IndexRows => ({ token: [], string: [], date: [], reference: [], number: [] });
