import type { ParamDef } from '../search-params';

/** A parsed search: what the client asked, validated against the R4 definitions. */
export interface SearchQuery {
  resourceType: string;
  filters: Filter[];
  sort: SortKey[];
  count: number;
  cursor?: Cursor;
  includes: Include[];
  revincludes: Include[];
  total: 'none' | 'accurate';
  summary?: 'count' | 'data' | 'text';
  elements?: string[];
  /** Parameters skipped in lenient mode, reported back in an OperationOutcome. */
  ignored: string[];
}

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

export type Filter =
  | { kind: 'token'; param: ParamDef; not: boolean; values: { system?: string | null; code?: string }[] }
  | { kind: 'string'; param: ParamDef; mode: 'prefix' | 'exact' | 'contains'; /** a token's display text (`:text`) */ text: boolean; values: string[] }
  | { kind: 'date'; param: ParamDef | null; values: { prefix: Prefix; lo: string; hi: string }[] }
  | { kind: 'number'; param: ParamDef; values: { prefix: Prefix; value: number; lo: number; hi: number; system?: string | null; code?: string }[] }
  | { kind: 'reference'; param: ParamDef; values: { type?: string; id: string }[] }
  | { kind: 'chain'; param: ParamDef; targetTypes: string[]; inner: Filter }
  | { kind: 'id'; values: string[] }
  | { kind: 'missing'; param: ParamDef; missing: boolean };

export interface SortKey {
  /** null: the resource's own column (`_id`, `_lastUpdated`). */
  param: ParamDef | null;
  column?: 'id' | 'last_updated';
  descending: boolean;
}

/** Keyset position: the sort values and rk of the row at a page boundary. */
export interface Cursor {
  values: (string | number | null)[];
  rk: number;
  /** 'prev' pages walk backwards from the cursor. */
  direction: 'next' | 'prev';
}

export interface Include {
  sourceType: string;
  param: ParamDef;
  targetType?: string;
  iterate: boolean;
}
