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
 * about one the reader treats (store/access.ts). Whether a row is about an opted-out person is
 * a primary-key probe of each of its patients (usually one) into every registration of every
 * person who opted out (migration 10), so a row costs the same however many residents opted
 * out; with none in the store, one probe per statement skips the test.
 */
export function visibleSql(r: string, ps: Params, rule: ReadRule | undefined): string {
  if (!rule) return 'TRUE';
  const optedOut = `((SELECT EXISTS (SELECT 1 FROM access_optout_member)) AND EXISTS (SELECT 1 FROM access_optout_member m WHERE m.patient_id = ANY(${r}.patients)))`;
  if (rule.facility === undefined) return `(NOT ${r}.sensitive AND NOT (${optedOut}))`;
  // A treatment relationship (an open referral) opens an opted-out person's records to both
  // ends, and a completed one what it carried; never a sensitive label. Their sets are computed
  // once per statement, and only if a row gets that far.
  const facility = ps.add(rule.facility);
  const treated = `${r}.patients && (SELECT access_treated_ids(${facility}))`;
  const disclosed = `ARRAY[${r}.type || '/' || ${r}.id] <@ (SELECT access_disclosed_refs(${facility}))`;
  return `(${r}.author = ${facility} OR (NOT ${r}.sensitive AND (NOT (${optedOut}) OR ${treated} OR ${disclosed})))`;
}
