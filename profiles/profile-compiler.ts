import { parseFhirPath, type FhirPathAtom } from '@medplum/core';
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

const CORE = 'http://hl7.org/fhir/StructureDefinition/';

export interface Invariant {
  key: string;
  human: string;
  atom: FhirPathAtom;
}

/** What one element of a profile demands of each instance of it (one node per path step). */
export interface ElementRule {
  /** The element id in the profile ('Observation.effective[x]', 'Patient.identifier:mrn'), named in diagnostics. */
  id: string;
  /** The JSON property; for a choice element, the prefix its typed properties start with ('effective'). */
  name: string;
  choice: boolean;
  min: number;
  max: number;
  /** Resource types a Reference here may point at; absent: any the base allows. */
  targets?: readonly string[];
  pattern?: unknown;
  invariants: Invariant[];
  children: ElementRule[];
  slicing?: { discriminatorPaths: string[] };
  slices: SliceRule[];
  /** Whether each instance needs a look (targets, pattern, invariants, children), not only a count. */
  perInstance: boolean;
}

export interface SliceRule extends ElementRule {
  /** Whether an instance of the sliced element belongs to this slice (its discriminators match). */
  member: (instance: unknown) => boolean;
}

export interface CompiledProfile {
  url: string;
  type: string;
  /** The resource itself: its invariants, and the top-level elements as children. */
  root: ElementRule;
}

type Fail = (where: string, message: string) => never;

/** Element properties that only describe, for readers and implementers; none is an instance rule. */
const DESCRIPTIVE = new Set(['short', 'definition', 'comment', 'requirements', 'alias', 'label', 'mustSupport']);
const ENFORCED = new Set(['id', 'path', 'sliceName', 'slicing', 'min', 'max', 'type', 'constraint']);
const CONSTRAINT_KEYS = new Set(['key', 'severity', 'human', 'expression', 'xpath', 'source', 'requirements']);
const SLICING_KEYS = new Set(['discriminator', 'rules', 'ordered', 'description']);
const TYPE_KEYS = new Set(['code', 'targetProfile']);
const DISCRIMINATOR_TYPES = new Set(['pattern', 'value']);

/**
 * Compiles a profile's differential into rules. Anything the compiler cannot enforce throws,
 * naming the profile and the element, so no rule a StructureDefinition states is silently skipped.
 */
export function compileProfile(sd: StructureDefinition): CompiledProfile {
  const label = sd.url ?? sd.id ?? 'StructureDefinition';
  const fail: Fail = (where, message) => {
    throw new Error(`Profile ${label}: ${where}: ${message}`);
  };
  if (sd.resourceType !== 'StructureDefinition' || sd.kind !== 'resource' || sd.derivation !== 'constraint' || !sd.type || !sd.url) {
    fail('header', 'expected a resource profile (kind resource, derivation constraint) with url and type');
  }
  const type = sd.type!;
  // The differential is read against the core definition; a profile on a profile would need its base's rules too.
  if (sd.baseDefinition !== CORE + type) fail('baseDefinition', `must be ${CORE + type}`);
  if (sd.snapshot) fail('snapshot', 'only the differential is compiled; publish profiles without a snapshot');

  const root = newRule(type, type);
  const seen = new Set<string>();
  for (const el of sd.differential?.element ?? []) {
    const id = el.id ?? el.path;
    if (seen.has(id)) fail(id, 'appears twice in the differential');
    seen.add(id);
    applyElement(locate(root, id, el, fail), el, id === type, fail);
  }
  finish(root, fail);
  return { url: sd.url!, type, root };
}

function newRule(id: string, step: string): ElementRule {
  const choice = step.endsWith('[x]');
  return { id, name: choice ? step.slice(0, -3) : step, choice, min: 0, max: Infinity, invariants: [], children: [], slices: [], perInstance: false };
}

/** The rule an element id addresses ('Patient.identifier:mrn.type'), creating the steps a differential skips. */
function locate(root: ElementRule, id: string, el: ElementDefinition, fail: Fail): ElementRule {
  const [head, ...segments] = id.split('.');
  if (head !== root.id) fail(id, `is not an element of ${root.id}`);
  if (id.replace(/:[^.]*/g, '') !== el.path) fail(id, `id and path (${el.path}) disagree`);
  let rule = root;
  segments.forEach((segment, i) => {
    const [step, sliceName, ...rest] = segment.split(':');
    if (rest.length > 0 || sliceName?.includes('/')) fail(id, 're-slicing is not supported');
    const childId = `${rule.id}.${step}`;
    let child = rule.children.find((c) => c.id === childId);
    if (!child) rule.children.push((child = newRule(childId, step)));
    rule = child;
    if (sliceName === undefined) return;
    const sliceId = `${childId}:${sliceName}`;
    let slice = rule.slices.find((s) => s.id === sliceId);
    if (!slice) {
      if (i !== segments.length - 1 || el.sliceName !== sliceName) fail(id, `slice '${sliceName}' is used before it is declared`);
      if (!rule.slicing) fail(id, `slices ${rule.id}, which declares no slicing`);
      rule.slices.push((slice = { ...newRule(sliceId, step), member: () => false }));
    }
    rule = slice;
  });
  if (el.sliceName !== undefined && !rule.id.endsWith(`:${el.sliceName}`)) fail(id, `sliceName ${el.sliceName} does not match the id`);
  return rule;
}

function applyElement(rule: ElementRule, el: ElementDefinition, isRoot: boolean, fail: Fail): void {
  const id = rule.id;
  const props = el as unknown as Record<string, unknown>;
  const patterns = Object.keys(props).filter((k) => k.startsWith('pattern'));
  const unknown = Object.keys(props).filter((k) => !DESCRIPTIVE.has(k) && !ENFORCED.has(k) && !k.startsWith('pattern'));
  if (unknown.length > 0) fail(id, `${unknown.join(', ')} cannot be enforced by the profile compiler`);
  if (isRoot && (el.min !== undefined || el.max !== undefined || el.type || patterns.length > 0 || el.slicing)) {
    fail(id, 'the root element may carry only descriptions and constraints');
  }

  if (el.min !== undefined) rule.min = el.min;
  if (el.max !== undefined) rule.max = el.max === '*' ? Infinity : Number(el.max);
  if (!Number.isInteger(rule.min) || !(rule.max === Infinity || Number.isInteger(rule.max)) || rule.min > rule.max) {
    fail(id, `cardinality ${el.min ?? ''}..${el.max ?? ''} is not valid`);
  }
  if (el.type) rule.targets = referenceTargets(id, el.type, fail);
  if (patterns.length > 1) fail(id, 'more than one pattern[x]');
  if (patterns.length === 1) rule.pattern = props[patterns[0]];
  for (const c of el.constraint ?? []) rule.invariants.push(invariant(id, c, fail));
  if (el.slicing) rule.slicing = { discriminatorPaths: slicingPaths(id, el.slicing, fail) };
}

function referenceTargets(id: string, types: NonNullable<ElementDefinition['type']>, fail: Fail): string[] | undefined {
  const targets: string[] = [];
  for (const t of types) {
    const extra = Object.keys(t).filter((k) => !TYPE_KEYS.has(k));
    if (extra.length > 0) fail(id, `type.${extra.join(', type.')} cannot be enforced by the profile compiler`);
    if (t.code !== 'Reference') fail(id, `type ${t.code}: only Reference types (with targetProfile) are enforced`);
    // A Reference without targetProfile allows whatever the base allows.
    if (!t.targetProfile) return undefined;
    for (const p of t.targetProfile) {
      if (!p.startsWith(CORE)) fail(id, `targetProfile ${p}: only core resource types are checked`);
      targets.push(p.slice(CORE.length));
    }
  }
  return targets;
}

function invariant(id: string, c: NonNullable<ElementDefinition['constraint']>[number], fail: Fail): Invariant {
  const where = `${id} constraint ${c.key}`;
  const extra = Object.keys(c).filter((k) => !CONSTRAINT_KEYS.has(k));
  if (extra.length > 0) fail(where, `${extra.join(', ')} cannot be enforced by the profile compiler`);
  // Validation either passes a bundle or rejects it; a warning would have nowhere to go.
  if (c.severity !== 'error') fail(where, `severity ${c.severity}: only error invariants are enforced`);
  if (!c.expression) fail(where, 'has no FHIRPath expression');
  try {
    return { key: c.key, human: c.human, atom: parseFhirPath(c.expression!) };
  } catch (err) {
    return fail(where, `FHIRPath does not parse: ${(err as Error).message}`);
  }
}

function slicingPaths(id: string, slicing: NonNullable<ElementDefinition['slicing']>, fail: Fail): string[] {
  const extra = Object.keys(slicing).filter((k) => !SLICING_KEYS.has(k));
  if (extra.length > 0) fail(id, `slicing.${extra.join(', slicing.')} cannot be enforced by the profile compiler`);
  // Closed or ordered slicing restricts instances outside the slices, which nothing here checks.
  if (slicing.rules !== 'open') fail(id, `slicing rules '${slicing.rules}': only open slicing is supported`);
  if (slicing.ordered) fail(id, 'ordered slicing is not supported');
  if (!slicing.discriminator?.length) fail(id, 'slicing without a discriminator is not supported');
  return slicing.discriminator!.map((d) => {
    if (!DISCRIMINATOR_TYPES.has(d.type!)) fail(id, `discriminator type '${d.type}': only pattern and value are supported`);
    return d.path!;
  });
}

/** Settles slice membership once every element is read: a slice's discriminating pattern comes after the slice. */
function finish(rule: ElementRule, fail: Fail): void {
  for (const slice of rule.slices) {
    const tests = rule.slicing!.discriminatorPaths.map((path) => {
      const steps = path === '$this' ? [] : path.split('.');
      const pattern = descendant(slice, steps)?.pattern;
      if (pattern === undefined) return fail(slice.id, `has no pattern at its discriminator path '${path}'`);
      return (instance: unknown): boolean => valuesAt(instance, steps).some((v) => matchesPattern(v, pattern));
    });
    slice.member = (instance) => tests.every((t) => t(instance));
  }
  for (const child of [...rule.children, ...rule.slices]) finish(child, fail);
  rule.perInstance = rule.targets !== undefined || rule.pattern !== undefined || rule.invariants.length > 0 || rule.children.length > 0;
}

function descendant(rule: ElementRule, steps: string[]): ElementRule | undefined {
  return steps.reduce<ElementRule | undefined>((r, step) => r?.children.find((c) => c.name === step && !c.choice), rule);
}

function valuesAt(value: unknown, steps: string[]): unknown[] {
  let current = [value];
  for (const step of steps) {
    current = current.flatMap((v) => (v !== null && typeof v === 'object' ? [(v as Record<string, unknown>)[step]].flat() : [])).filter((v) => v !== undefined);
  }
  return current;
}

/** FHIR pattern semantics: every property the pattern has, the value has too; each pattern array item matches some value item. */
export function matchesPattern(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) return Array.isArray(value) && pattern.every((p) => value.some((v) => matchesPattern(v, p)));
  if (pattern !== null && typeof pattern === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
    return Object.entries(pattern).every(([k, p]) => matchesPattern((value as Record<string, unknown>)[k], p));
  }
  return value === pattern;
}
