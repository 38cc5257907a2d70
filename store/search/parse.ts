import { badRequest, notSupported } from '../errors';
import { parseDateRange } from '../fhir-date';
import { indexable, normalizeString } from '../normalize';
import { getParam, isKnownResourceType, type ParamDef } from '../search-params';
import type { Cursor, Filter, Include, Prefix, SearchQuery, SortKey } from './query';

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

export interface ParseOptions {
  /** `Prefer: handling=strict`: unknown parameters are an error instead of being ignored. */
  strict?: boolean;
}

const PREFIXES = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);
/** Parameters that are part of the protocol, not of any resource; handled or knowingly ignored. */
const IGNORED_CONTROL = new Set(['_format', '_pretty']);

export function parseSearch(resourceType: string, params: [string, string][], opts: ParseOptions = {}): SearchQuery {
  if (!isKnownResourceType(resourceType)) throw notSupported(`Unknown resource type '${resourceType}'`);
  const q: SearchQuery = { resourceType, filters: [], sort: [], count: DEFAULT_COUNT, includes: [], revincludes: [], total: 'none', ignored: [] };
  const unknown = (name: string, why: string): void => {
    if (opts.strict) throw badRequest(`${why}: '${name}'`, [name]);
    q.ignored.push(name);
  };

  for (const [name, value] of params) {
    // PostgreSQL text cannot hold NUL: refuse it here, naming the parameter, not as a failed query.
    if (name.includes('\0') || value.includes('\0')) throw badRequest(`Search parameter '${name.replaceAll('\0', '\\0')}' contains a NUL character`, [name]);
    switch (name) {
      case '_count':
        q.count = parseCount(value);
        continue;
      case '_sort':
        q.sort = value.split(',').map((s) => parseSort(resourceType, s.trim()));
        continue;
      case '_include':
      case '_revinclude':
        (name === '_include' ? q.includes : q.revincludes).push(parseInclude(value, name));
        continue;
      case '_include:iterate':
      case '_revinclude:iterate':
        (name.startsWith('_include') ? q.includes : q.revincludes).push({ ...parseInclude(value, name), iterate: true });
        continue;
      case '_total':
        if (!['none', 'estimate', 'accurate'].includes(value)) throw badRequest(`_total must be none, estimate or accurate`, ['_total']);
        q.total = value === 'none' ? 'none' : 'accurate';
        continue;
      case '_summary':
        if (value === 'count' || value === 'data' || value === 'text') q.summary = value;
        else if (value !== 'false') throw notSupported(`_summary=${value} is not supported (count, data, text, false are)`);
        continue;
      case '_elements':
        q.elements = value.split(',').map((e) => e.trim()).filter(Boolean);
        continue;
      case '_cursor':
        q.cursor = decodeCursor(value);
        continue;
    }
    if (IGNORED_CONTROL.has(name)) continue;
    const filter = parseFilter(resourceType, name, value, unknown);
    if (filter) q.filters.push(filter);
  }
  if (q.cursor) checkCursor(q.cursor, q.sort);
  return q;
}

/**
 * A cursor is echoed back from a page link, so a client can alter it: each value must be of
 * its sort key's type (the SQL casts it), else it is the client's error, not a failed query.
 */
function checkCursor(c: Cursor, sort: SortKey[]): void {
  const bad = sort.some((key, i) => i < c.values.length && !cursorValueFits(c.values[i], key));
  if (bad) throw badRequest('Invalid _cursor: it does not fit this _sort; use the next/previous links as given', ['_cursor']);
}

const UNBOUNDED = new Set(['infinity', '-infinity']);

function cursorValueFits(v: unknown, key: SortKey): boolean {
  const type = key.column === 'id' ? 'string' : key.column === 'last_updated' ? 'date' : key.param!.type;
  switch (type) {
    case 'date':
      return typeof v === 'string' && (UNBOUNDED.has(v) || parseDateRange(v) !== undefined);
    case 'number':
    case 'quantity':
      return (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && UNBOUNDED.has(v));
    default:
      return typeof v === 'string' && !v.includes('\0');
  }
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw badRequest(`_count must be a non-negative integer, got '${value}'`, ['_count']);
  return Math.min(n, MAX_COUNT);
}

function parseSort(resourceType: string, spec: string): SortKey {
  const descending = spec.startsWith('-');
  const code = descending ? spec.slice(1) : spec;
  if (code === '_id') return { param: null, column: 'id', descending };
  if (code === '_lastUpdated') return { param: null, column: 'last_updated', descending };
  const param = getParam(resourceType, code);
  if (!param) throw badRequest(`Unknown sort parameter '${code}' for ${resourceType}`, ['_sort']);
  if (param.type === 'reference') throw notSupported(`Sorting by reference parameter '${code}' is not supported`);
  return { param, descending };
}

function parseInclude(value: string, name: string): Include {
  const [sourceType, code, targetType] = value.split(':');
  const param = sourceType && code ? getParam(sourceType, code) : undefined;
  if (!param || param.type !== 'reference') throw badRequest(`${name} must name a reference parameter as Type:param[:target], got '${value}'`, [name]);
  if (targetType && !param.targets.includes(targetType)) throw badRequest(`${value}: ${targetType} is not a target of ${param.key}`, [name]);
  return { sourceType, param, targetType, iterate: false };
}

function parseFilter(resourceType: string, name: string, value: string, unknown: (n: string, why: string) => void): Filter | undefined {
  // Chained: subject:Patient.identifier=..., subject.name=...
  const dot = name.indexOf('.');
  if (dot > 0) return parseChain(resourceType, name, dot, value, unknown);

  const [code, modifier] = splitModifier(name);
  if (code === '_id') {
    if (modifier) throw notSupported(`_id does not support modifier ':${modifier}'`);
    return { kind: 'id', values: splitValues(value) };
  }
  if (code === '_lastUpdated') {
    if (modifier) throw notSupported(`_lastUpdated does not support modifier ':${modifier}'`);
    return { kind: 'date', param: null, values: splitValues(value).map((v) => parseDateValue(name, v)) };
  }
  const param = getParam(resourceType, code);
  if (!param) {
    unknown(name, `Unknown search parameter for ${resourceType}`);
    return undefined;
  }
  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') throw badRequest(`${name} must be true or false`, [name]);
    return { kind: 'missing', param, missing: value === 'true' };
  }
  const values = splitValues(value);
  if (values.length === 0) throw badRequest(`Search parameter '${name}' has no value`, [name]);

  switch (param.type) {
    case 'token':
    case 'uri':
      if (modifier === 'text') return { kind: 'string', param, text: true, mode: 'prefix', values: values.map(searchedString) };
      if (modifier && modifier !== 'not') throw notSupported(`Modifier ':${modifier}' is not supported on token parameter '${code}'`);
      return {
        kind: 'token',
        param,
        not: modifier === 'not',
        values: param.type === 'uri' ? values.map((v) => ({ code: indexable(v) })) : values.map(parseToken),
      };
    case 'string':
      if (modifier && modifier !== 'exact' && modifier !== 'contains') throw notSupported(`Modifier ':${modifier}' is not supported on string parameter '${code}'`);
      return {
        kind: 'string',
        param,
        text: false,
        mode: (modifier as 'exact' | 'contains' | undefined) ?? 'prefix',
        values: modifier === 'exact' ? values : values.map(searchedString),
      };
    case 'date':
      if (modifier) throw notSupported(`Modifier ':${modifier}' is not supported on date parameter '${code}'`);
      return { kind: 'date', param, values: values.map((v) => parseDateValue(name, v)) };
    case 'number':
    case 'quantity':
      if (modifier) throw notSupported(`Modifier ':${modifier}' is not supported on ${param.type} parameter '${code}'`);
      return { kind: 'number', param, values: values.map((v) => parseNumberValue(name, v, param.type === 'quantity')) };
    case 'reference': {
      if (modifier && !param.targets.includes(modifier)) throw notSupported(`Modifier ':${modifier}' is not supported on reference parameter '${code}'`);
      return { kind: 'reference', param, values: values.map((v) => parseReferenceValue(name, v, param, modifier)) };
    }
  }
}

function parseChain(resourceType: string, name: string, dot: number, value: string, unknown: (n: string, why: string) => void): Filter | undefined {
  const [code, typeModifier] = splitModifier(name.slice(0, dot));
  const param = getParam(resourceType, code);
  if (!param || param.type !== 'reference') {
    unknown(name, `Chained search needs a reference parameter of ${resourceType}`);
    return undefined;
  }
  const targetTypes = typeModifier ? [typeModifier] : param.targets;
  if (typeModifier && !param.targets.includes(typeModifier)) throw badRequest(`${typeModifier} is not a target of ${param.key}`, [name]);
  const rest = name.slice(dot + 1);
  // The chained parameter must exist on every candidate target type, as one query serves them all.
  const usable = targetTypes.filter((t) => getParam(t, splitModifier(rest.split('.')[0])[0]) || ['_id', '_lastUpdated'].includes(rest));
  if (usable.length === 0) {
    unknown(name, `No target of ${param.key} has search parameter '${rest}'`);
    return undefined;
  }
  const inner = parseFilter(usable[0], rest, value, unknown);
  if (!inner) return undefined;
  if (usable.length > 1) throw badRequest(`Chained parameter '${name}' is ambiguous; name the target type as ${code}:<Type>.${rest}`, [name]);
  return { kind: 'chain', param, targetTypes: usable, inner };
}

function splitModifier(name: string): [string, string | undefined] {
  const i = name.indexOf(':');
  return i < 0 ? [name, undefined] : [name.slice(0, i), name.slice(i + 1)];
}

/** Splits on commas that are not escaped as `\,`, then unescapes. */
export function splitValues(value: string): string[] {
  return value
    .split(/(?<!\\),/)
    .map((v) => v.replace(/\\([,|$\\])/g, '$1'))
    .filter((v) => v.length > 0);
}

/** As the index holds it: normalised, and cut as long values are (`:exact` compares the full value kept beside). */
function searchedString(v: string): string {
  return indexable(normalizeString(v));
}

function parseToken(v: string): { system?: string | null; code?: string } {
  const bar = v.search(/(?<!\\)\|/);
  if (bar < 0) return { code: indexable(v) };
  const system = v.slice(0, bar);
  const code = v.slice(bar + 1);
  return { system: system === '' ? null : indexable(system), code: code === '' ? undefined : indexable(code) };
}

function splitPrefix(v: string): [Prefix, string] {
  const p = v.slice(0, 2);
  return PREFIXES.has(p) && /^[a-z]{2}[-+0-9.]/.test(v) ? [p as Prefix, v.slice(2)] : ['eq', v];
}

function parseDateValue(name: string, v: string): { prefix: Prefix; lo: string; hi: string } {
  const [prefix, rest] = splitPrefix(v);
  const range = parseDateRange(rest);
  if (!range) throw badRequest(`Invalid date '${v}' for search parameter '${name}'`, [name]);
  return { prefix, ...range };
}

function parseNumberValue(name: string, v: string, quantity: boolean) {
  const [prefix, rest] = splitPrefix(v);
  const parts = rest.split('|');
  const num = parts[0];
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(num)) throw badRequest(`Invalid number '${num}' for search parameter '${name}'`, [name]);
  if (!quantity && parts.length > 1) throw badRequest(`Search parameter '${name}' is a number, not a quantity`, [name]);
  const value = Number(num);
  // The precision of the value written is the precision searched: 100 means [99.5, 100.5).
  const decimals = num.includes('.') && !/e/i.test(num) ? num.split('.')[1].length : 0;
  const half = 0.5 * 10 ** -decimals;
  return {
    prefix,
    value,
    lo: value - half,
    hi: value + half,
    ...(parts.length > 1 ? { system: parts[1] === '' ? undefined : parts[1], code: parts[2] === '' ? undefined : parts[2] } : {}),
  };
}

function parseReferenceValue(name: string, v: string, param: ParamDef, typeModifier?: string): { type?: string; id: string } {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(v);
  if (m && isKnownResourceType(m[1])) {
    if (!param.targets.includes(m[1])) throw badRequest(`${m[1]} is not a target of search parameter '${name}'`, [name]);
    return { type: m[1], id: m[2] };
  }
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(v)) throw badRequest(`Invalid reference '${v}' for search parameter '${name}'`, [name]);
  const type = typeModifier ?? (param.targets.length === 1 ? param.targets[0] : undefined);
  return { type, id: v };
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.values, c.rk, c.direction === 'prev' ? 1 : 0])).toString('base64url');
}

function decodeCursor(value: string): Cursor {
  try {
    const [values, rk, prev] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as [(string | number | null)[], number, number];
    if (!Array.isArray(values) || !Number.isSafeInteger(rk)) throw new Error('shape');
    return { values, rk, direction: prev ? 'prev' : 'next' };
  } catch {
    throw badRequest('Invalid _cursor: use the next/previous links as given', ['_cursor']);
  }
}
