import { visibleSql, type ReadRule } from '../access-filter';
import type { ParamDef } from '../search-params';
import type { Filter, Prefix, SearchQuery, SortKey } from './query';

/** Collects bind parameters; every value from a request reaches SQL only through here. */
export class Params {
  readonly values: unknown[] = [];
  private aliases = 0;
  /** A table alias unique within the query being built (chains nest subqueries). */
  alias(base: string): string {
    return `${base}${++this.aliases}`;
  }
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const MAX_TEXT = String.fromCodePoint(0x10ffff);

/**
 * The condition that selects a parameter's index rows in table alias `t`, shared rows
 * included (see shareRows in search-params.ts); `suffix` ':text' selects a token's display
 * text, indexed as strings.
 */
export function rowsOf(param: ParamDef, t: string, ps: Params, suffix = ''): string {
  const keys = param.rows.keys.map((k) => k + suffix);
  const p = keys.length === 1 ? `${t}.p = ${ps.add(keys[0])}` : `${t}.p = ANY(${ps.add(keys)}::text[])`;
  return param.rows.targetType ? `${p} AND ${t}.ttype = ${ps.add(param.rows.targetType)}` : p;
}

/** SQL condition (over resource alias `r`) for one filter; a chain only passes through resources `rule` may see. */
export function filterSql(f: Filter, r: string, ps: Params, rule?: ReadRule): string {
  switch (f.kind) {
    case 'id':
      return `${r}.id = ANY(${ps.add(f.values)}::text[])`;
    case 'token': {
      const t = ps.alias('t');
      const codesOnly = f.values.every((v) => v.system === undefined && v.code !== undefined);
      const cond = codesOnly
        ? `${t}.code = ANY(${ps.add(f.values.map((v) => v.code))}::text[])`
        : or(
            f.values.map((v) =>
              and([
                v.code !== undefined ? `${t}.code = ${ps.add(v.code)}` : '',
                v.system === null ? `${t}.sys IS NULL` : v.system !== undefined ? `${t}.sys = ${ps.add(v.system)}` : '',
              ]),
            ),
          );
      const exists = `EXISTS (SELECT 1 FROM idx_token ${t} WHERE ${t}.rk = ${r}.rk AND ${rowsOf(f.param, t, ps)} AND ${cond})`;
      return f.not ? `NOT ${exists}` : exists;
    }
    case 'string': {
      const s = ps.alias('s');
      const cond = or(
        f.values.map((v) => {
          if (f.mode === 'exact') return `${s}.raw = ${ps.add(v)}`;
          if (f.mode === 'contains') return `${s}.v LIKE ${ps.add(`%${escapeLike(v)}%`)}`;
          // A range rather than LIKE 'x%' so the (p, v) index is used whatever the plan cache does.
          return `(${s}.v >= ${ps.add(v)} AND ${s}.v < ${ps.add(v + MAX_TEXT)})`;
        }),
      );
      return `EXISTS (SELECT 1 FROM idx_string ${s} WHERE ${s}.rk = ${r}.rk AND ${rowsOf(f.param, s, ps, f.text ? ':text' : '')} AND ${cond})`;
    }
    case 'date': {
      if (!f.param) {
        const lu = `${r}.last_updated`;
        return or(f.values.map((v) => dateCondition(lu, `(${lu} + interval '1 millisecond')`, v.prefix, v.lo, v.hi, ps)));
      }
      const d = ps.alias('d');
      const cond = or(f.values.map((v) => dateCondition(`${d}.lo`, `${d}.hi`, v.prefix, v.lo, v.hi, ps)));
      return `EXISTS (SELECT 1 FROM idx_date ${d} WHERE ${d}.rk = ${r}.rk AND ${rowsOf(f.param, d, ps)} AND ${cond})`;
    }
    case 'number': {
      const n = ps.alias('n');
      const cond = or(
        f.values.map((v) =>
          and([
            numberCondition(`${n}.v`, v.prefix, v.value, v.lo, v.hi, ps),
            v.system ? `${n}.sys = ${ps.add(v.system)}` : '',
            v.code ? `${n}.code = ${ps.add(v.code)}` : '',
          ]),
        ),
      );
      return `EXISTS (SELECT 1 FROM idx_number ${n} WHERE ${n}.rk = ${r}.rk AND ${rowsOf(f.param, n, ps)} AND ${cond})`;
    }
    case 'reference': {
      const x = ps.alias('x');
      const cond = or(f.values.map((v) => and([`${x}.tid = ${ps.add(v.id)}`, v.type ? `${x}.ttype = ${ps.add(v.type)}` : ''])));
      return `EXISTS (SELECT 1 FROM idx_ref ${x} WHERE ${x}.rk = ${r}.rk AND ${rowsOf(f.param, x, ps)} AND ${cond})`;
    }
    case 'chain': {
      const x = ps.alias('x');
      const r2 = ps.alias('c');
      return `EXISTS (SELECT 1 FROM idx_ref ${x} JOIN resource ${r2} ON ${r2}.type = ${x}.ttype AND ${r2}.id = ${x}.tid
        WHERE ${x}.rk = ${r}.rk AND ${rowsOf(f.param, x, ps)} AND ${x}.ttype = ANY(${ps.add(f.targetTypes)}::text[])
          AND NOT ${r2}.deleted AND ${visibleSql(r2, ps, rule)} AND ${filterSql(f.inner, r2, ps, rule)})`;
    }
    case 'missing': {
      const m = ps.alias('m');
      const exists = `EXISTS (SELECT 1 FROM ${tableFor(f.param.type)} ${m} WHERE ${m}.rk = ${r}.rk AND ${rowsOf(f.param, m, ps)})`;
      return f.missing ? `NOT ${exists}` : exists;
    }
  }
}

/**
 * FHIR date comparison on half-open ranges: the resource's [lo, hi) against the searched
 * [vlo, vhi) (the precision of the value searched sets its range).
 */
function dateCondition(lo: string, hi: string, prefix: Prefix, vlo: string, vhi: string, ps: Params): string {
  const a = (): string => `${ps.add(vlo)}::timestamptz`;
  const b = (): string => `${ps.add(vhi)}::timestamptz`;
  switch (prefix) {
    case 'eq':
      return `(${lo} >= ${a()} AND ${lo} < ${b()} AND ${hi} <= ${b()})`;
    case 'ne':
      return `NOT (${lo} >= ${a()} AND ${hi} <= ${b()})`;
    case 'gt':
      return `${hi} > ${b()}`;
    case 'ge':
      return `${hi} > ${a()}`;
    case 'lt':
      return `${lo} < ${a()}`;
    case 'le':
      return `${lo} < ${b()}`;
    case 'sa':
      return `${lo} >= ${b()}`;
    case 'eb':
      return `${hi} <= ${a()}`;
    case 'ap': {
      // Approximately: overlaps the searched range widened by 10% of its distance from now.
      const [tlo, thi] = [instantMs(vlo), instantMs(vhi)];
      // A searched range open at one end (9999-12-31, year 1 with an offset) is measured from its closed end.
      const mid = Number.isFinite(tlo) && Number.isFinite(thi) ? (tlo + thi) / 2 : Number.isFinite(tlo) ? tlo : thi;
      const margin = Math.max(Math.abs(Date.now() - mid) * 0.1, 86_400_000);
      return `(${lo} < ${ps.add(widened(thi + margin))}::timestamptz AND ${hi} > ${ps.add(widened(tlo - margin))}::timestamptz)`;
    }
  }
}

/** 0001-01-01 and 10000-01-01 UTC: the years a FHIR date can name (Date.UTC reads years below 100 as 19xx). */
const YEAR_1_MS = -62_135_596_800_000;
const YEAR_10000_MS = 253_402_300_800_000;

function instantMs(v: string): number {
  return v === '-infinity' ? -Infinity : v === 'infinity' ? Infinity : Date.parse(v);
}

/** A bound of an `ap` range widened past the years FHIR dates can name is unbounded: PostgreSQL cannot read Date#toISOString's six-digit years. */
function widened(t: number): string {
  if (t < YEAR_1_MS) return '-infinity';
  if (t >= YEAR_10000_MS) return 'infinity';
  return new Date(t).toISOString();
}

function numberCondition(col: string, prefix: Prefix, value: number, lo: number, hi: number, ps: Params): string {
  switch (prefix) {
    case 'eq':
      return `(${col} >= ${ps.add(lo)} AND ${col} < ${ps.add(hi)})`;
    case 'ne':
      return `NOT (${col} >= ${ps.add(lo)} AND ${col} < ${ps.add(hi)})`;
    case 'gt':
    case 'sa':
      return `${col} > ${ps.add(value)}`;
    case 'lt':
    case 'eb':
      return `${col} < ${ps.add(value)}`;
    case 'ge':
      return `${col} >= ${ps.add(value)}`;
    case 'le':
      return `${col} <= ${ps.add(value)}`;
    case 'ap': {
      const margin = Math.abs(value) * 0.1;
      return `(${col} >= ${ps.add(value - margin)} AND ${col} <= ${ps.add(value + margin)})`;
    }
  }
}

export function tableFor(type: string): string {
  switch (type) {
    case 'token':
    case 'uri':
      return 'idx_token';
    case 'string':
      return 'idx_string';
    case 'date':
      return 'idx_date';
    case 'reference':
      return 'idx_ref';
    default:
      return 'idx_number';
  }
}

/**
 * The sort key expression of a resource for one _sort entry. Several values sort by the lowest
 * ascending and the highest descending (FHIR's rule); a missing value sorts last either way,
 * through a sentinel, so keyset paging compares plain values.
 */
export function sortExpression(key: SortKey, r: string, ps: Params): { sql: string; cast: string } {
  if (key.column === 'id') return { sql: `${r}.id`, cast: 'text' };
  if (key.column === 'last_updated') return { sql: `${r}.last_updated`, cast: 'timestamptz' };
  const param = key.param!;
  const agg = key.descending ? 'max' : 'min';
  const s = ps.alias('k');
  const p = rowsOf(param, s, ps);
  switch (param.type) {
    case 'date': {
      const col = key.descending ? 'hi' : 'lo';
      const sentinel = key.descending ? `'-infinity'` : `'infinity'`;
      return { sql: `COALESCE((SELECT ${agg}(${s}.${col}) FROM idx_date ${s} WHERE ${s}.rk = ${r}.rk AND ${p}), ${sentinel}::timestamptz)`, cast: 'timestamptz' };
    }
    case 'number':
    case 'quantity': {
      const sentinel = key.descending ? `'-Infinity'` : `'Infinity'`;
      return { sql: `COALESCE((SELECT ${agg}(${s}.v) FROM idx_number ${s} WHERE ${s}.rk = ${r}.rk AND ${p}), ${sentinel}::numeric)`, cast: 'numeric' };
    }
    default: {
      const table = param.type === 'string' ? 'idx_string' : 'idx_token';
      const col = param.type === 'string' ? 'v' : 'code';
      const sentinel = key.descending ? `''` : ps.add(MAX_TEXT);
      return { sql: `COALESCE((SELECT ${agg}(${s}.${col}) FROM ${table} ${s} WHERE ${s}.rk = ${r}.rk AND ${p}) COLLATE "C", ${sentinel} COLLATE "C")`, cast: 'text' };
    }
  }
}

/** WHERE clause for the resources a search matches (without paging), as `rule` may see them. */
export function whereSql(q: SearchQuery, r: string, ps: Params, rule?: ReadRule): string {
  return and([`${r}.type = ${ps.add(q.resourceType)}`, `NOT ${r}.deleted`, ...q.filters.map((f) => filterSql(f, r, ps, rule)), rule ? visibleSql(r, ps, rule) : '']);
}

export function and(parts: string[]): string {
  const kept = parts.filter(Boolean);
  return kept.length === 0 ? 'TRUE' : kept.length === 1 ? kept[0] : `(${kept.join(' AND ')})`;
}

export function or(parts: string[]): string {
  const kept = parts.filter(Boolean);
  return kept.length === 0 ? 'FALSE' : kept.length === 1 ? kept[0] : `(${kept.join(' OR ')})`;
}

function escapeLike(v: string): string {
  return v.replace(/[\\%_]/g, (c) => `\\${c}`);
}
