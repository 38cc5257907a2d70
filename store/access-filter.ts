/**
 * The read rule of store/access.ts as one SQL condition over a resource row (from `resource`
 * or `resource_history`, which carry the same label columns), added to every read path.
 */
import type { AccessContext } from './access';
import type { Params } from './search/sql';

/** Who a read is filtered for; undefined reads everything. */
export interface ReadRule {
  /** The reading facility, which sees what it wrote whatever its labels. */
  facility?: string;
}

export function readRule(ctx: AccessContext | undefined): ReadRule | undefined {
  if (!ctx || ctx.unrestricted || ctx.breakGlass) return undefined;
  return { facility: ctx.facility };
}

/**
 * Visible = written by the reader, or not sensitive and either not about an opted-out person or
 * about one the reader treats (store/access.ts). The opted-out set (migration 4) is an
 * uncorrelated subquery, so PostgreSQL computes it once per statement (an InitPlan, only if a row gets that far) and each row costs an array overlap;
 * with no opt-out in the store the set is empty after one probe of access_optout.
 */
export function visibleSql(r: string, ps: Params, rule: ReadRule | undefined): string {
  if (!rule) return 'TRUE';
  const optedOut = `${r}.patients && (SELECT access_opted_out_ids())`;
  if (rule.facility === undefined) return `(NOT ${r}.sensitive AND NOT (${optedOut}))`;
  // A treatment relationship (an open referral) opens an opted-out person's records to both
  // ends, and a completed one what it carried; never a sensitive label. Their sets, like the
  // opted-out one, are computed once per statement, and only if a row gets that far.
  const facility = ps.add(rule.facility);
  const treated = `${r}.patients && (SELECT access_treated_ids(${facility}))`;
  const disclosed = `ARRAY[${r}.type || '/' || ${r}.id] <@ (SELECT access_disclosed_refs(${facility}))`;
  return `(${r}.author = ${facility} OR (NOT ${r}.sensitive AND (NOT (${optedOut}) OR ${treated} OR ${disclosed})))`;
}
