import {
  AsAtom,
  DotAtom,
  EqualsAtom,
  evalFhirPathTyped,
  FunctionAtom,
  IsAtom,
  LiteralAtom,
  parseFhirPath,
  SymbolAtom,
  toTypedValue,
  tryGetDataType,
  UnionAtom,
} from '@medplum/core';
import type { FhirPathAtom } from '@medplum/core';
import type { IndexRows } from './index-rows';
import { emptyIndexRows } from './index-rows';
import { indexable, normalizeString } from './normalize';
import { parseDateRange } from './fhir-date';
import { ensureDefinitionsLoaded, getParams, isKnownResourceType, ownsRows, type ParamDef, type ParamType } from './search-params';

/**
 * Search index extraction. Each parameter's per-type FHIRPath expression is compiled once into
 * a closure chain over the raw JSON when it has a simple shape (unions, dotted paths, choice
 * elements resolved from the StructureDefinitions, `as T` / `.as(T)` casts,
 * `.where(resolve() is T)` on references, and `.where(<property> = '<string>')` on a
 * single-valued primitive such as `telecom.where(system='phone')`); any other expression
 * (`.exists()`, `extension(...)`, `ofType`, indexers, other functions) is evaluated by medplum's
 * FHIRPath engine. Both produce (value, FHIR type name) pairs that go through one converter per
 * parameter type, so the two paths cannot disagree on how a value is indexed.
 */

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
type Step = (value: Json, type: string, acc: Acc) => void;
type Converter = (value: Json, type: string, acc: Acc) => void;

export interface ExtractOptions {
  /** Test-only: evaluate every parameter with medplum's FHIRPath engine instead of the compiled form. */
  forceFallback?: boolean;
}

interface ParamPlan {
  def: ParamDef;
  text: string; // `<key>:text`
  convert: Converter;
  compiled: ((resource: Json, acc: Acc) => void) | undefined;
  parsed: FhirPathAtom | null | undefined; // undefined = not parsed yet; null = unparseable
}

// ---------------------------------------------------------------------------------------------
// normalizeString costs about a microsecond; code displays, cities and the like repeat across
// resources, so a bounded memo pays for itself. Cleared wholesale when full (no LRU bookkeeping).

const NORMALIZED_MAX = 50_000;
const normalized = new Map<string, string>();

function normalize(raw: string): string {
  let v = normalized.get(raw);
  if (v === undefined) {
    v = normalizeString(raw);
    if (normalized.size >= NORMALIZED_MAX) normalized.clear();
    normalized.set(raw, v);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Row accumulator: collects one resource's rows, deduplicating within the current parameter.

class Acc {
  rows: IndexRows = emptyIndexRows();
  p = '';
  pText = '';
  private t0 = 0;
  private s0 = 0;
  private d0 = 0;
  private r0 = 0;
  private n0 = 0;

  begin(plan: ParamPlan): void {
    this.p = plan.def.key;
    this.pText = plan.text;
    const r = this.rows;
    this.t0 = r.token.length;
    this.s0 = r.string.length;
    this.d0 = r.date.length;
    this.r0 = r.reference.length;
    this.n0 = r.number.length;
  }

  token(system: unknown, rawCode: unknown): void {
    if (typeof rawCode !== 'string' || rawCode === '') return;
    const code = indexable(rawCode);
    const sys = typeof system === 'string' && system !== '' ? indexable(system) : null;
    const rows = this.rows.token;
    for (let i = this.t0; i < rows.length; i++) if (rows[i].code === code && rows[i].system === sys) return;
    rows.push({ p: this.p, system: sys, code });
  }

  /** A string row under the parameter (asText = false) or under its `:text` key; `raw` keeps the value as written. */
  string(raw: unknown, asText = false): void {
    if (typeof raw !== 'string' || raw === '') return;
    const value = indexable(raw.length > 200 ? normalizeString(raw) : normalize(raw));
    if (value === '') return;
    const p = asText ? this.pText : this.p;
    const rows = this.rows.string;
    for (let i = this.s0; i < rows.length; i++) if (rows[i].raw === raw && rows[i].p === p) return;
    rows.push({ p, value, raw });
  }

  date(lo: string, hi: string): void {
    const rows = this.rows.date;
    for (let i = this.d0; i < rows.length; i++) if (rows[i].lo === lo && rows[i].hi === hi) return;
    rows.push({ p: this.p, lo, hi });
  }

  reference(targetType: string, targetId: string): void {
    const rows = this.rows.reference;
    for (let i = this.r0; i < rows.length; i++) if (rows[i].targetId === targetId && rows[i].targetType === targetType) return;
    rows.push({ p: this.p, targetType, targetId });
  }

  number(value: unknown, system: unknown, code: unknown): void {
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    const sys = typeof system === 'string' && system !== '' ? system : null;
    const c = typeof code === 'string' && code !== '' ? code : null;
    const rows = this.rows.number;
    for (let i = this.n0; i < rows.length; i++) if (rows[i].value === value && rows[i].system === sys && rows[i].code === c) return;
    rows.push({ p: this.p, value, system: sys, code: c });
  }
}

// ---------------------------------------------------------------------------------------------
// References

/** True if value[from, to) is a FHIR id: 1-64 of [A-Za-z0-9-.]. */
function isId(value: string, from: number, to: number): boolean {
  if (to - from < 1 || to - from > 64) return false;
  for (let i = from; i < to; i++) {
    const c = value.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46)) return false;
  }
  return true;
}

/**
 * (type, id) of a literal reference `Type/id[/_history/v]`, relative or an absolute URL ending
 * so; undefined for anything else (`#contained`, `urn:uuid:`, conditional or malformed).
 * Hand-parsed: this runs for every reference of every resource.
 */
export function parseReference(reference: unknown): { type: string; id: string } | undefined {
  if (typeof reference !== 'string') return undefined;
  let end = reference.length;
  const history = reference.indexOf('/_history/');
  if (history >= 0) {
    if (!isId(reference, history + 10, end)) return undefined;
    end = history;
  }
  const slash = reference.lastIndexOf('/', end - 1);
  if (slash <= 0 || !isId(reference, slash + 1, end)) return undefined;
  const typeStart = reference.lastIndexOf('/', slash - 1) + 1;
  if (typeStart > 0 && !/^[a-z][a-z0-9+.-]*:\/\/[^?#]*\/$/i.test(reference.slice(0, typeStart))) return undefined;
  const type = reference.slice(typeStart, slash);
  if (!isKnownResourceType(type)) return undefined;
  return { type, id: reference.slice(slash + 1, end) };
}

/** The resource type `resolve()` would give for a Reference (no lookups: read from the reference itself). */
function referencedType(ref: Json): string | undefined {
  if (ref === null || typeof ref !== 'object') return undefined;
  if (ref.resource && typeof ref.resource === 'object') return ref.resource.resourceType;
  const s = ref.reference;
  if (typeof s !== 'string') return typeof ref.type === 'string' && ref.identifier ? ref.type : undefined;
  const q = s.indexOf('?');
  if (q >= 0) return s.slice(0, q);
  return parseReference(s)?.type;
}

// ---------------------------------------------------------------------------------------------
// Converters: one per parameter type, from (value, FHIR type name) to rows.

const STRINGISH = new Set(['code', 'id', 'string', 'uri', 'url', 'canonical', 'oid', 'uuid', 'markdown']);
const QUANTITIES = new Set(['Quantity', 'Age', 'Duration', 'Distance', 'Count', 'SimpleQuantity', 'MoneyQuantity']);
const NUMBERS = new Set(['decimal', 'integer', 'positiveInt', 'unsignedInt', 'integer64']);
const DATES = new Set(['date', 'dateTime', 'instant']);

function tokenCoding(c: Json, acc: Acc): void {
  if (c === null || typeof c !== 'object') return;
  acc.token(c.system, c.code);
  acc.string(c.display, true);
}

const convertToken: Converter = (v, t, acc) => {
  switch (t) {
    case 'Coding':
      tokenCoding(v, acc);
      return;
    case 'CodeableConcept':
      if (v === null || typeof v !== 'object') return;
      if (Array.isArray(v.coding)) for (const c of v.coding) tokenCoding(c, acc);
      acc.string(v.text, true);
      return;
    case 'Identifier':
      if (v === null || typeof v !== 'object') return;
      acc.token(v.system, v.value);
      if (v.type && typeof v.type === 'object') acc.string(v.type.text, true);
      return;
    case 'ContactPoint':
      if (v === null || typeof v !== 'object') return;
      acc.token(v.system, v.value);
      return;
    case 'boolean':
      if (typeof v === 'boolean') acc.token(null, v ? 'true' : 'false');
      return;
    default:
      if (typeof v === 'string' && STRINGISH.has(t)) acc.token(null, v);
  }
};

const convertUri: Converter = (v, t, acc) => {
  if (typeof v === 'string' && STRINGISH.has(t)) acc.token(null, v);
};

const str = (v: unknown): v is string => typeof v === 'string' && v !== '';

const convertString: Converter = (v, t, acc) => {
  switch (t) {
    case 'string':
    case 'markdown':
      acc.string(v);
      return;
    case 'HumanName': {
      if (v === null || typeof v !== 'object') return;
      acc.string(v.text);
      acc.string(v.family);
      const given: string[] = Array.isArray(v.given) ? v.given.filter(str) : [];
      for (const g of given) acc.string(g);
      if (Array.isArray(v.prefix)) for (const x of v.prefix) acc.string(x);
      if (Array.isArray(v.suffix)) for (const x of v.suffix) acc.string(x);
      if (str(v.family) && given.length > 0) {
        acc.string(v.family + given.join('')); // 王 + 小明 -> 王小明
        acc.string(given.join(' ') + ' ' + v.family);
      }
      return;
    }
    case 'Address':
      if (v === null || typeof v !== 'object') return;
      acc.string(v.text);
      if (Array.isArray(v.line)) for (const x of v.line) acc.string(x);
      acc.string(v.city);
      acc.string(v.district);
      acc.string(v.state);
      acc.string(v.postalCode);
      acc.string(v.country);
      return;
  }
};

function dateValue(v: unknown, acc: Acc): void {
  if (typeof v !== 'string') return;
  const r = parseDateRange(v);
  if (r) acc.date(r.lo, r.hi);
}

const convertDate: Converter = (v, t, acc) => {
  if (DATES.has(t)) return dateValue(v, acc);
  if (v === null || typeof v !== 'object') return;
  if (t === 'Period') {
    const start = typeof v.start === 'string' ? parseDateRange(v.start) : undefined;
    const end = typeof v.end === 'string' ? parseDateRange(v.end) : undefined;
    if (start || end) acc.date(start?.lo ?? '-infinity', end?.hi ?? 'infinity');
  } else if (t === 'Timing') {
    if (Array.isArray(v.event)) for (const e of v.event) dateValue(e, acc);
  }
};

const convertReference: Converter = (v, t, acc) => {
  if (t !== 'Reference' || v === null || typeof v !== 'object') return;
  const ref = parseReference(v.reference);
  if (ref) acc.reference(ref.type, ref.id);
};

function quantity(q: Json, acc: Acc): void {
  if (q !== null && typeof q === 'object') acc.number(q.value, q.system, q.code ?? q.unit);
}

const convertQuantity: Converter = (v, t, acc) => {
  if (v === null || typeof v !== 'object') return;
  if (QUANTITIES.has(t)) quantity(v, acc);
  else if (t === 'Range') {
    quantity(v.low, acc);
    quantity(v.high, acc);
  } else if (t === 'Money') acc.number(v.value, typeof v.currency === 'string' ? 'urn:iso:std:iso:4217' : null, v.currency);
};

const convertNumber: Converter = (v, t, acc) => {
  if (NUMBERS.has(t)) acc.number(v, null, null);
};

const CONVERTERS: Record<ParamType, Converter> = {
  token: convertToken,
  string: convertString,
  date: convertDate,
  reference: convertReference,
  quantity: convertQuantity,
  number: convertNumber,
  uri: convertUri,
};

// ---------------------------------------------------------------------------------------------
// Compiler for simple expression shapes.

type Op =
  | { kind: 'prop'; name: string }
  | { kind: 'cast'; type: string }
  | { kind: 'whereRef'; type: string }
  | { kind: 'whereEq'; name: string; value: string };

class NotSimple extends Error {}

/** A term as a root symbol plus a linear list of operations, or NotSimple. */
function linearize(atom: unknown): { root: string; ops: Op[] } {
  if (atom instanceof SymbolAtom) return { root: atom.name, ops: [] };
  if (atom instanceof DotAtom) {
    const left = linearize(atom.left);
    const right = atom.right;
    if (right instanceof SymbolAtom) left.ops.push({ kind: 'prop', name: right.name });
    else if (right instanceof FunctionAtom && right.name === 'as' && right.args.length === 1 && right.args[0] instanceof SymbolAtom) {
      left.ops.push({ kind: 'cast', type: right.args[0].name });
    } else if (right instanceof FunctionAtom && right.name === 'where' && right.args.length === 1 && isResolveIs(right.args[0])) {
      left.ops.push({ kind: 'whereRef', type: ((right.args[0] as IsAtom).right as SymbolAtom).name });
    } else if (right instanceof FunctionAtom && right.name === 'where' && right.args.length === 1 && isPropertyEqualsString(right.args[0])) {
      const eq = right.args[0] as EqualsAtom;
      left.ops.push({ kind: 'whereEq', name: (eq.left as SymbolAtom).name, value: (eq.right as LiteralAtom).value.value as string });
    } else throw new NotSimple();
    return left;
  }
  if (atom instanceof AsAtom && atom.right instanceof SymbolAtom) {
    const left = linearize(atom.left);
    left.ops.push({ kind: 'cast', type: atom.right.name });
    return left;
  }
  throw new NotSimple();
}

function isResolveIs(atom: unknown): boolean {
  return atom instanceof IsAtom && atom.left instanceof FunctionAtom && atom.left.name === 'resolve' && atom.left.args.length === 0 && atom.right instanceof SymbolAtom;
}

function unionTerms(atom: unknown, out: unknown[]): unknown[] {
  if (atom instanceof UnionAtom) {
    unionTerms(atom.left, out);
    unionTerms(atom.right, out);
  } else out.push(atom);
  return out;
}

/** `where(<property> = '<string>')`, e.g. `telecom.where(system='phone')`. */
function isPropertyEqualsString(atom: unknown): boolean {
  return atom instanceof EqualsAtom && atom.left instanceof SymbolAtom && atom.right instanceof LiteralAtom && typeof atom.right.value.value === 'string';
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** For a property step: per input type, the JSON keys to try in order and the type each gives. */
function propertyCandidates(inTypes: string[], name: string): Map<string, [string, string][]> {
  const table = new Map<string, [string, string][]>();
  for (const t of inTypes) {
    const schema = tryGetDataType(t);
    const el = schema?.elements[name] ?? schema?.elements[name + '[x]'];
    if (!el || !el.type?.length) throw new NotSimple();
    const last = el.path.slice(el.path.lastIndexOf('.') + 1);
    const cands: [string, string][] = [];
    for (const { code } of el.type) {
      if (!code || code === 'Resource' || code === 'DomainResource' || isKnownResourceType(code)) throw new NotSimple();
      cands.push([last.replace('[x]', capitalize(code)), code]);
    }
    table.set(t, cands);
  }
  return table;
}

function eachValue(x: Json, type: string, next: Step, acc: Acc): void {
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) {
      const e = x[i];
      if (e !== undefined && e !== null) next(e, type, acc);
    }
  } else next(x, type, acc);
}

function propertyStep(table: Map<string, [string, string][]>, next: Step): Step {
  if (table.size === 1) {
    const cands = [...table.values()][0];
    if (cands.length === 1) {
      const [key, type] = cands[0];
      return (v, _t, acc) => {
        if (v === null || typeof v !== 'object') return;
        const x = v[key];
        if (x !== undefined && x !== null && x !== '') eachValue(x, type, next, acc);
      };
    }
    return (v, _t, acc) => {
      if (v === null || typeof v !== 'object') return;
      for (let i = 0; i < cands.length; i++) {
        const x = v[cands[i][0]];
        if (x !== undefined) {
          if (x !== null && x !== '') eachValue(x, cands[i][1], next, acc);
          return;
        }
      }
    };
  }
  return (v, t, acc) => {
    const cands = table.get(t);
    if (!cands || v === null || typeof v !== 'object') return;
    for (let i = 0; i < cands.length; i++) {
      const x = v[cands[i][0]];
      if (x !== undefined) {
        if (x !== null && x !== '') eachValue(x, cands[i][1], next, acc);
        return;
      }
    }
  };
}

/** Compiles one term into a step taking the resource; throws NotSimple. */
function compileTerm(resourceType: string, atom: unknown, convert: Converter): Step {
  const { root, ops } = linearize(atom);
  if (root !== resourceType) throw new NotSimple();
  // Forward pass: static types after each operation; a cast directly after a choice property
  // narrows the property's candidates to the cast type (valid FHIR has one value[x] key).
  let types = [resourceType];
  const built: ({ kind: 'prop'; table: Map<string, [string, string][]> } | { kind: 'filter'; test: (v: Json, t: string) => boolean })[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.kind === 'prop') {
      let table = propertyCandidates(types, op.name);
      const cast = ops[i + 1]?.kind === 'cast' ? (ops[i + 1] as { type: string }).type : undefined;
      if (cast !== undefined) {
        table = new Map([...table].map(([t, c]) => [t, c.filter(([, ct]) => ct === cast)] as [string, [string, string][]]).filter(([, c]) => c.length > 0));
        i++;
        if (table.size === 0) return () => undefined; // the term can never match
      }
      built.push({ kind: 'prop', table });
      types = [...new Set([...table.values()].flat().map(([, t]) => t))];
    } else if (op.kind === 'cast') {
      const want = op.type;
      if (!types.includes(want)) return () => undefined;
      if (types.length > 1) built.push({ kind: 'filter', test: (_v, t) => t === want });
      types = [want];
    } else if (op.kind === 'whereEq') {
      // Only a single-valued, non-choice primitive property: then FHIRPath `=` is plain string equality.
      if (types.length !== 1) throw new NotSimple();
      const el = tryGetDataType(types[0])?.elements[op.name];
      const code = el?.type?.length === 1 ? el.type[0].code : undefined;
      if (!el || el.isArray || el.max !== 1 || !code || !STRINGISH.has(code)) throw new NotSimple();
      const { name, value } = op;
      built.push({ kind: 'filter', test: (v) => v !== null && typeof v === 'object' && v[name] === value });
    } else {
      if (types.length !== 1 || types[0] !== 'Reference') throw new NotSimple();
      const want = op.type;
      built.push({ kind: 'filter', test: (v) => referencedType(v) === want });
    }
  }
  // Backward pass: chain closures.
  let step: Step = convert;
  for (let i = built.length - 1; i >= 0; i--) {
    const b = built[i];
    const next = step;
    if (b.kind === 'prop') step = propertyStep(b.table, next);
    else {
      const test = b.test;
      step = (v, t, acc) => {
        if (test(v, t)) next(v, t, acc);
      };
    }
  }
  return step;
}

function compile(def: ParamDef, parsed: FhirPathAtom, convert: Converter): ParamPlan['compiled'] {
  try {
    const steps = unionTerms(parsed.child, []).map((term) => compileTerm(def.resourceType, term, convert));
    const type = def.resourceType;
    if (steps.length === 1) {
      const s = steps[0];
      return (resource, acc) => s(resource, type, acc);
    }
    return (resource, acc) => {
      for (let i = 0; i < steps.length; i++) steps[i](resource, type, acc);
    };
  } catch (err) {
    if (err instanceof NotSimple) return undefined;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Plans per resource type, and extraction.

const plans = new Map<string, ParamPlan[]>();

function parse(plan: ParamPlan): FhirPathAtom | null {
  if (plan.parsed === undefined) {
    try {
      plan.parsed = parseFhirPath(plan.def.expression);
    } catch {
      plan.parsed = null;
    }
  }
  return plan.parsed;
}

function plansFor(resourceType: string): ParamPlan[] {
  let list = plans.get(resourceType);
  if (list) return list;
  ensureDefinitionsLoaded();
  // A parameter that shares other parameters' rows (shareRows) has none of its own to extract.
  list = getParams(resourceType).filter(ownsRows).map((def) => {
    const plan: ParamPlan = { def, text: `${def.key}:text`, convert: CONVERTERS[def.type], compiled: undefined, parsed: undefined };
    const parsed = parse(plan);
    if (parsed) plan.compiled = compile(def, parsed, plan.convert);
    return plan;
  });
  plans.set(resourceType, list);
  return list;
}

function unbox(v: unknown): unknown {
  return v instanceof String || v instanceof Number || v instanceof Boolean ? v.valueOf() : v;
}

function runFallback(plan: ParamPlan, resource: Json, acc: Acc): void {
  const parsed = parse(plan);
  if (!parsed) return;
  let results;
  try {
    results = evalFhirPathTyped(parsed, [toTypedValue(resource)]);
  } catch {
    return; // a malformed value must not fail the write; the parameter is just not indexed
  }
  for (const r of results) {
    if (r.value !== undefined && r.value !== null) plan.convert(unbox(r.value), r.type, acc);
  }
}

/** The search index rows of one resource. */
export function extractIndexRows(resource: { resourceType: string; [k: string]: unknown }, options?: ExtractOptions): IndexRows {
  const acc = new Acc();
  const list = plansFor(resource.resourceType);
  const forceFallback = options?.forceFallback === true;
  for (let i = 0; i < list.length; i++) {
    const plan = list[i];
    acc.begin(plan);
    if (plan.compiled && !forceFallback) plan.compiled(resource, acc);
    else runFallback(plan, resource, acc);
  }
  return acc.rows;
}

/** Codes of the parameters of a resource type that are evaluated by medplum rather than compiled. */
export function fallbackParams(resourceType: string): string[] {
  return plansFor(resourceType).filter((p) => !p.compiled).map((p) => p.def.code);
}
