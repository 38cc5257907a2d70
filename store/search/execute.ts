import { visibleSql, type ReadRule } from '../access-filter';
import type { SqlExecutor } from '../db/database';
import { fromRow, RESOURCE_COLUMNS, type ResourceRow, type StoredResource } from '../stored';
import type { Cursor, Include, SearchQuery } from './query';
import { Params, rowsOf, sortExpression, whereSql } from './sql';

export interface SearchResult {
  matches: StoredResource[];
  included: StoredResource[];
  total?: number;
  next?: Cursor;
  previous?: Cursor;
}

type Row = ResourceRow & { rk: number; [sortKey: string]: unknown };

/**
 * Runs a parsed search: one keyset-paged query, then a count and includes only if asked.
 * `rule` filters matches, counts and includes alike (store/access-filter.ts).
 */
export async function executeSearch(sql: SqlExecutor, q: SearchQuery, rule?: ReadRule): Promise<SearchResult> {
  if (q.summary === 'count') return { matches: [], included: [], total: await count(sql, q, rule) };

  const ps = new Params();
  const where = whereSql(q, 'r', ps, rule);
  const keys = q.sort.map((k) => ({ ...sortExpression(k, 'r', ps), descending: k.descending }));
  const backwards = q.cursor?.direction === 'prev';
  const conds = [where];
  if (q.cursor) conds.push(keysetCondition(keys, q.cursor, backwards, ps));
  const order = [...keys.map((k, i) => `s${i} ${k.descending !== backwards ? 'DESC' : 'ASC'}`), `r.rk ${backwards ? 'DESC' : 'ASC'}`];
  const select = [RESOURCE_COLUMNS, 'r.rk', ...keys.map((k, i) => `${k.sql} AS s${i}`)].join(', ');
  const rows = await sql.query<Row>(
    `SELECT ${select} FROM resource r WHERE ${conds.join(' AND ')} ORDER BY ${order.join(', ')} LIMIT ${q.count + 1}`,
    ps.values,
  );

  const more = rows.length > q.count;
  const page = rows.slice(0, q.count);
  if (backwards) page.reverse();
  const cursorOf = (row: Row, direction: 'next' | 'prev'): Cursor => ({
    values: keys.map((_, i) => cursorValue(row[`s${i}`])),
    rk: row.rk,
    direction,
  });
  const result: SearchResult = { matches: page.map(fromRow), included: [] };
  if (page.length > 0) {
    const hasNext = backwards ? true : more;
    const hasPrev = backwards ? more : q.cursor !== undefined;
    if (hasNext) result.next = cursorOf(page[page.length - 1], 'next');
    if (hasPrev) result.previous = cursorOf(page[0], 'prev');
  }
  if (q.total === 'accurate') {
    result.total = !q.cursor && !more ? page.length : await count(sql, q, rule);
  }
  if (q.includes.length + q.revincludes.length > 0 && page.length > 0) {
    result.included = await resolveIncludes(sql, page, q.includes, q.revincludes, rule);
  }
  return result;
}

async function count(sql: SqlExecutor, q: SearchQuery, rule: ReadRule | undefined): Promise<number> {
  const ps = new Params();
  const rows = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM resource r WHERE ${whereSql(q, 'r', ps, rule)}`, ps.values);
  return rows[0].n;
}

/**
 * Rows strictly after (or, walking back, before) the cursor in the sort order, with rk as the
 * final tie-breaker so pages never overlap or skip, at any depth (no OFFSET).
 */
function keysetCondition(keys: { sql: string; cast: string; descending: boolean }[], c: Cursor, backwards: boolean, ps: Params): string {
  if (c.values.length !== keys.length) return 'FALSE';
  const alternatives: string[] = [];
  for (let i = 0; i <= keys.length; i++) {
    const eqs = keys.slice(0, i).map((k, j) => `${k.sql} = ${ps.add(c.values[j])}::${k.cast}`);
    let last: string;
    if (i < keys.length) {
      const k = keys[i];
      const op = k.descending !== backwards ? '<' : '>';
      last = `${k.sql} ${op} ${ps.add(c.values[i])}::${k.cast}`;
    } else {
      last = `r.rk ${backwards ? '<' : '>'} ${ps.add(c.rk)}`;
    }
    alternatives.push(`(${[...eqs, last].join(' AND ')})`);
  }
  return `(${alternatives.join(' OR ')})`;
}

function cursorValue(v: unknown): string | number | null {
  if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.toISOString() : v.getTime() > 0 ? 'infinity' : '-infinity';
  if (typeof v === 'number' && !Number.isFinite(v)) return v > 0 ? 'infinity' : '-infinity';
  return v as string | number | null;
}

const MAX_ITERATE_DEPTH = 3;
const MAX_INCLUDED = 5000;

/** `_include` follows references out of the page; `_revinclude` finds resources pointing in. */
async function resolveIncludes(sql: SqlExecutor, page: Row[], includes: Include[], revincludes: Include[], rule: ReadRule | undefined): Promise<StoredResource[]> {
  const seen = new Set(page.map((r) => `${r.type}/${r.id}`));
  const out: StoredResource[] = [];
  let frontier: { rk: number; type: string; id: string }[] = page;
  for (let depth = 0; depth < MAX_ITERATE_DEPTH && frontier.length > 0 && out.length < MAX_INCLUDED; depth++) {
    const found: Row[] = [];
    for (const inc of includes.filter((i) => depth === 0 || i.iterate)) {
      const sources = frontier.filter((f) => f.type === inc.sourceType);
      if (sources.length === 0) continue;
      const ps = new Params();
      found.push(
        ...(await sql.query<Row>(
          `SELECT ${RESOURCE_COLUMNS}, r.rk FROM idx_ref x JOIN resource r ON r.type = x.ttype AND r.id = x.tid
           WHERE x.rk = ANY(${ps.add(sources.map((s) => s.rk))}::bigint[]) AND ${rowsOf(inc.param, 'x', ps)}
             ${inc.targetType ? `AND x.ttype = ${ps.add(inc.targetType)}` : ''} AND NOT r.deleted AND ${visibleSql('r', ps, rule)} LIMIT ${MAX_INCLUDED}`,
          ps.values,
        )),
      );
    }
    for (const inc of revincludes.filter((i) => depth === 0 || i.iterate)) {
      const targets = frontier.filter((f) => inc.param.targets.includes(f.type) && (!inc.targetType || inc.targetType === f.type));
      if (targets.length === 0) continue;
      const ps = new Params();
      found.push(
        ...(await sql.query<Row>(
          `SELECT ${RESOURCE_COLUMNS}, r.rk FROM idx_ref x JOIN resource r ON r.rk = x.rk
           WHERE ${rowsOf(inc.param, 'x', ps)} AND x.tid = ANY(${ps.add(targets.map((t) => t.id))}::text[])
             AND x.ttype = ANY(${ps.add([...new Set(targets.map((t) => t.type))])}::text[]) AND NOT r.deleted AND ${visibleSql('r', ps, rule)} LIMIT ${MAX_INCLUDED}`,
          ps.values,
        )),
      );
    }
    frontier = [];
    for (const row of found) {
      const key = `${row.type}/${row.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(fromRow(row));
      frontier.push(row);
    }
  }
  return out;
}
