import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, ElementDefinition, OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { FhirError } from '../store/errors';

/** The consortium's profiles, one StructureDefinition per resource type, published as JSON. */
export const PROFILES_DIR = join(__dirname, 'definitions');

/**
 * Differential keys the compiler understands. A profile using anything else fails to load,
 * so no rule written in a StructureDefinition is ever silently not enforced.
 */
const UNDERSTOOD = new Set(['id', 'path', 'short', 'definition', 'comment', 'min', 'max', 'type', 'mustSupport']);

interface Rule {
  /** Path below the resource, e.g. ['code', 'coding']; a last step ending in [x] is a choice. */
  steps: string[];
  min: number;
  max: number;
  /** Resource types a Reference here may point at. */
  targets?: string[];
}

interface CompiledProfile {
  url: string;
  rules: Rule[];
}

function compile(sd: StructureDefinition, file: string): CompiledProfile {
  if (sd.resourceType !== 'StructureDefinition' || sd.derivation !== 'constraint' || !sd.type || !sd.url) {
    throw new Error(`${file}: expected a constraint StructureDefinition with type and url`);
  }
  const rules: Rule[] = [];
  for (const el of sd.differential?.element ?? []) {
    const unknown = Object.keys(el).filter((k) => !UNDERSTOOD.has(k));
    if (unknown.length) throw new Error(`${file}: element ${el.path} uses ${unknown.join(', ')}, which the profile compiler does not enforce`);
    const [root, ...steps] = el.path.split('.');
    if (root !== sd.type) throw new Error(`${file}: element path ${el.path} is not under ${sd.type}`);
    if (steps.length === 0) continue;
    const targets = targetTypes(el, file);
    rules.push({ steps, min: el.min ?? 0, max: el.max === undefined || el.max === '*' ? Infinity : Number(el.max), ...(targets ? { targets } : {}) });
  }
  return { url: sd.url, rules };
}

function targetTypes(el: ElementDefinition, file: string): string[] | undefined {
  if (!el.type) return undefined;
  if (el.type.some((t) => t.code !== 'Reference')) throw new Error(`${file}: element ${el.path} constrains types other than Reference`);
  return el.type.flatMap((t) => (t.targetProfile ?? []).map((p) => p.slice(p.lastIndexOf('/') + 1)));
}

/** The values at one step below each parent, arrays flattened; a `[x]` step matches any choice. */
function valuesAt(parents: unknown[], step: string): unknown[] {
  const out: unknown[] = [];
  const choice = step.endsWith('[x]') ? step.slice(0, -3) : undefined;
  for (const p of parents) {
    if (!p || typeof p !== 'object') continue;
    const obj = p as Record<string, unknown>;
    const keys = choice ? Object.keys(obj).filter((k) => k.startsWith(choice) && /^[A-Z]/.test(k.slice(choice.length))) : [step];
    for (const k of keys) {
      const v = obj[k];
      if (Array.isArray(v)) out.push(...v);
      else if (v !== undefined && v !== null) out.push(v);
    }
  }
  return out;
}

function check(profile: CompiledProfile, resource: Resource, at: string): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  for (const rule of profile.rules) {
    const parents = rule.steps.length === 1 ? [resource] : rule.steps.slice(0, -1).reduce<unknown[]>((acc, s) => valuesAt(acc, s), [resource]);
    const last = rule.steps[rule.steps.length - 1];
    const path = `${at}.${rule.steps.join('.')}`;
    for (const parent of parents) {
      const values = valuesAt([parent], last);
      if (values.length < rule.min) issues.push(issue('required', path, `${path} is required by ${profile.url}`));
      else if (values.length > rule.max) issues.push(issue('invalid', path, `${path} may occur at most ${rule.max} time(s) in ${profile.url}`));
      for (const v of rule.targets ? values : []) {
        const ref = (v as { reference?: unknown }).reference;
        const type = typeof ref === 'string' && /^[A-Z][A-Za-z]+\//.test(ref) ? ref.slice(0, ref.indexOf('/')) : undefined;
        if (type && !rule.targets!.includes(type)) issues.push(issue('invalid', path, `${path} must reference ${rule.targets!.join(' or ')}, not ${type} (${profile.url})`));
      }
    }
  }
  return issues;
}

const issue = (code: 'required' | 'invalid', expression: string, diagnostics: string): OperationOutcomeIssue => ({ severity: 'error', code, diagnostics, expression: [expression] });

/** Reads and compiles every profile in `dir`; throws naming the file on anything it cannot enforce. */
export function loadProfiles(dir = PROFILES_DIR): { definitions: StructureDefinition[]; byType: Map<string, CompiledProfile> } {
  const definitions: StructureDefinition[] = [];
  const byType = new Map<string, CompiledProfile>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const sd = JSON.parse(readFileSync(join(dir, file), 'utf8')) as StructureDefinition;
    const compiled = compile(sd, file);
    if (byType.has(sd.type!)) throw new Error(`${file}: a second profile for ${sd.type}`);
    byType.set(sd.type!, compiled);
    definitions.push(sd);
  }
  return { definitions, byType };
}

let loaded: ReturnType<typeof loadProfiles> | undefined;
const profiles = (): ReturnType<typeof loadProfiles> => (loaded ??= loadProfiles());

/** The published StructureDefinitions (for the CapabilityStatement and `/fhir/StructureDefinition`). */
export function consortiumProfiles(): StructureDefinition[] {
  return profiles().definitions;
}

export function profileFor(resourceType: string): string | undefined {
  return profiles().byType.get(resourceType)?.url;
}

/**
 * Checks every resource of a mapped Bundle against its type's consortium profile. Throws a
 * 422 naming each broken element as `Bundle.entry[i].resource.<path>` and the profile.
 */
export function validateMappedBundle(bundle: Bundle): void {
  const issues: OperationOutcomeIssue[] = [];
  (bundle.entry ?? []).forEach((entry, i) => {
    const profile = entry.resource && profiles().byType.get(entry.resource.resourceType);
    if (profile) issues.push(...check(profile, entry.resource!, `Bundle.entry[${i}].resource`));
  });
  if (issues.length === 0) return;
  const [first, ...rest] = issues;
  throw new FhirError(422, first.code, first.diagnostics!, first.expression, rest);
}

/** Claims the consortium profile in meta.profile of every resource that has one. */
export function stampProfiles(bundle: Bundle): void {
  for (const entry of bundle.entry ?? []) {
    const url = entry.resource && profileFor(entry.resource.resourceType);
    if (!url) continue;
    const meta = (entry.resource!.meta ??= {});
    if (!meta.profile?.includes(url)) meta.profile = [...(meta.profile ?? []), url];
  }
}
