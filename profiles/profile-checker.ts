import { evalFhirPathTyped, toJsBoolean, toTypedValue, type TypedValue } from '@medplum/core';
import type { OperationOutcomeIssue, Reference, Resource } from '@medplum/fhirtypes';
import { matchesPattern, type CompiledProfile, type ElementRule, type Invariant } from './profile-compiler';

/** The resource type of the transaction entry a `urn:uuid:` reference names. */
export type FullUrlTypes = (fullUrl: string) => string | undefined;

/** `Type/id`, relative or at the end of an absolute URL, optionally with a version. */
const LITERAL_REFERENCE = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const NONE: readonly unknown[] = [];

/** Every way `resource` breaks `profile`; `at` is the FHIRPath of the resource, prefixed to each issue's expression. */
export function checkResource(profile: CompiledProfile, resource: Resource, at: string, fullUrlTypes: FullUrlTypes): OperationOutcomeIssue[] {
  const walk = new Walk(profile, resource, at, fullUrlTypes);
  walk.instance(profile.root, resource);
  return walk.issues;
}

class Walk {
  readonly issues: OperationOutcomeIssue[] = [];
  /** FHIRPath steps from the resource to the instance being checked; joined only when something is wrong. */
  private readonly path: string[] = [];
  private typedResource?: TypedValue;

  constructor(
    private readonly profile: CompiledProfile,
    private readonly resource: Resource,
    private readonly at: string,
    private readonly fullUrlTypes: FullUrlTypes,
  ) {}

  instance(rule: ElementRule, value: unknown): void {
    if (rule.targets) this.target(rule, rule.targets, value);
    if (rule.pattern !== undefined && !matchesPattern(value, rule.pattern)) {
      this.report('invariant', undefined, `${rule.id} does not match its required pattern ${JSON.stringify(rule.pattern)}`);
    }
    for (const inv of rule.invariants) this.invariant(rule, inv, value);
    if (rule.children.length === 0 || value === null || typeof value !== 'object') return;
    for (const child of rule.children) this.element(child, value as Record<string, unknown>);
  }

  private element(rule: ElementRule, parent: Record<string, unknown>): void {
    const raw = parent[rule.choice ? choiceKey(parent, rule.name) : rule.name];
    const many = Array.isArray(raw);
    const items: readonly unknown[] = raw === undefined || raw === null ? NONE : many ? raw : [raw];
    this.count(rule, items.length, rule.name);
    if (rule.perInstance) items.forEach((item, i) => this.within(many ? `${rule.name}[${i}]` : rule.name, rule, item));
    for (const slice of rule.slices) {
      let members = 0;
      items.forEach((item, i) => {
        if (!slice.member(item)) return;
        members++;
        this.within(many ? `${rule.name}[${i}]` : rule.name, slice, item);
      });
      this.count(slice, members, rule.name);
    }
  }

  private within(step: string, rule: ElementRule, item: unknown): void {
    this.path.push(step);
    this.instance(rule, item);
    this.path.pop();
  }

  private count(rule: ElementRule, n: number, step: string): void {
    if (n < rule.min) this.report('required', step, `${rule.id}: at least ${rule.min} required, found ${n}`);
    else if (n > rule.max) this.report('invariant', step, `${rule.id}: at most ${rule.max} allowed, found ${n}`);
  }

  private target(rule: ElementRule, targets: readonly string[], value: unknown): void {
    const type = referencedType(value as Reference, this.fullUrlTypes);
    if (type !== undefined && !targets.includes(type)) this.report('invariant', undefined, `${rule.id} must reference ${targets.join(' | ')}, not ${type}`);
  }

  private invariant(rule: ElementRule, inv: Invariant, value: unknown): void {
    const resource = (this.typedResource ??= toTypedValue(this.resource));
    const context = value === this.resource ? resource : toTypedValue(value);
    let failure: string | undefined;
    try {
      if (!toJsBoolean(evalFhirPathTyped(inv.atom, [context], { '%resource': resource, '%context': context }))) failure = '';
    } catch (err) {
      failure = ` (could not be evaluated: ${(err as Error).message})`;
    }
    if (failure !== undefined) this.report('invariant', undefined, `${rule.id}: constraint ${inv.key} failed: ${inv.human}${failure}`);
  }

  private report(code: 'required' | 'invariant', step: string | undefined, message: string): void {
    const expression = [this.at, ...this.path, ...(step === undefined ? [] : [step])].join('.');
    this.issues.push({ severity: 'error', code, diagnostics: `${message} (profile ${this.profile.url})`, expression: [expression] });
  }
}

/** The property holding a choice element: `effective` -> `effectiveDateTime` or `effectivePeriod`. */
function choiceKey(parent: Record<string, unknown>, prefix: string): string {
  for (const key in parent) {
    if (key.length > prefix.length && key.startsWith(prefix)) {
      const c = key.charCodeAt(prefix.length);
      if (c >= 65 && c <= 90) return key;
    }
  }
  return prefix;
}

function referencedType(ref: Reference | null | undefined, fullUrlTypes: FullUrlTypes): string | undefined {
  if (!ref || typeof ref !== 'object') return undefined;
  if (typeof ref.reference === 'string') {
    if (ref.reference.startsWith('urn:')) return fullUrlTypes(ref.reference);
    const literal = LITERAL_REFERENCE.exec(ref.reference);
    if (literal) return literal[1];
  }
  return typeof ref.type === 'string' ? ref.type : undefined;
}
