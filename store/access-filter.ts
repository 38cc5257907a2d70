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
 * opted-out set is an uncorrelated subquery, so PostgreSQL computes it once per statement (an
 * InitPlan) and each row costs an array overlap; with no opt-out in the store it is empty and
 * the overlap is false at once.
 */
export function visibleSql(r: string, ps: Params, rule: ReadRule | undefined): string {
  if (!rule) return 'TRUE';
  const shared = `(NOT ${r}.sensitive AND NOT (${r}.patients && COALESCE((SELECT array_agg(patient_id) FROM access_opted_out), '{}'::text[])))`;
  return rule.facility === undefined ? shared : `(${r}.author = ${ps.add(rule.facility)} OR ${shared})`;
}
