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
 * Visible = written by the reader, or neither sensitive nor about an opted-out person. The
 * opted-out set (migration 4) is an uncorrelated subquery, so PostgreSQL computes it once per
 * statement (an InitPlan, only if a row gets that far) and each row costs an array overlap;
 * with no opt-out in the store the set is empty after one probe of access_optout.
 */
export function visibleSql(r: string, ps: Params, rule: ReadRule | undefined): string {
  if (!rule) return 'TRUE';
  const shared = `(NOT ${r}.sensitive AND NOT (${r}.patients && (SELECT access_opted_out_ids())))`;
  return rule.facility === undefined ? shared : `(${r}.author = ${ps.add(rule.facility)} OR ${shared})`;
}
