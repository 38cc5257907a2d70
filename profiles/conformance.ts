import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, BundleEntry, OperationOutcomeIssue, StructureDefinition } from '@medplum/fhirtypes';
import { FhirError } from '../store/errors';
import { ensureDefinitionsLoaded } from '../store/search-params';
import { checkResource, type FullUrlTypes } from './profile-checker';
import { compileProfile, type CompiledProfile } from './profile-compiler';

/** The consortium's profiles, one StructureDefinition per resource type, published as JSON (the build copies them into dist). */
export const PROFILES_DIR = join(__dirname, 'definitions');

export interface LoadedProfiles {
  definitions: StructureDefinition[];
  byType: ReadonlyMap<string, CompiledProfile>;
}

/** Reads and compiles every profile in `dir`; throws naming the file and element of anything it cannot enforce. */
export function loadProfiles(dir = PROFILES_DIR): LoadedProfiles {
  const definitions: StructureDefinition[] = [];
  const byType = new Map<string, CompiledProfile>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const sd = JSON.parse(readFileSync(join(dir, file), 'utf8')) as StructureDefinition;
    let compiled: CompiledProfile;
    try {
      compiled = compileProfile(sd);
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
    }
    if (byType.has(compiled.type)) throw new Error(`${file}: a second profile for ${compiled.type}`);
    byType.set(compiled.type, compiled);
    definitions.push(sd);
  }
  return { definitions, byType };
}

// At import, so a profile the compiler cannot enforce stops the process before it accepts data.
const PROFILES = loadProfiles();
// medplum's FHIRPath needs the R4 definitions of the profiled types and the data types: without
// them it looks every absent element up under each choice-type suffix, about 15 µs a lookup.
ensureDefinitionsLoaded();

/** The published StructureDefinitions, as copies: whoever serves or stores them may stamp their meta. */
export function consortiumProfiles(): StructureDefinition[] {
  return PROFILES.definitions.map((sd) => structuredClone(sd));
}

/** The canonical URL of the consortium profile for a resource type, if there is one. */
export function profileFor(resourceType: string): string | undefined {
  return PROFILES.byType.get(resourceType)?.url;
}

/**
 * Checks every resource of a mapped transaction against its type's consortium profile and
 * throws a 422 naming each broken element (`Bundle.entry[i].resource.<path>`) and the profile.
 * `createOnly` (MapResult.createOnly) lists the fullUrls of copies of another record (the
 * demographics a lab message carries): they hold only what the message knew, are written only
 * when the record does not exist yet, and so are not held to the profile.
 */
export function validateMappedBundle(bundle: Bundle, createOnly: readonly string[] = []): void {
  const types = fullUrlTypes(bundle);
  const issues: OperationOutcomeIssue[] = [];
  (bundle.entry ?? []).forEach((entry, i) => {
    if (!isCopy(entry, createOnly)) issues.push(...entryIssues(entry, i, types));
  });
  if (issues.length === 0) return;
  const [first, ...rest] = issues;
  throw new FhirError(422, first.code, first.diagnostics!, first.expression, rest);
}

/**
 * Sets meta.profile to the consortium profile on every resource that has one and was
 * validated; a copy (see validateMappedBundle) claims it only if it conforms all the same.
 * Other claims are dropped: the gateway vouches only for what it checked.
 */
export function stampProfiles(bundle: Bundle, createOnly: readonly string[] = []): void {
  const types = fullUrlTypes(bundle);
  (bundle.entry ?? []).forEach((entry, i) => {
    const url = entry.resource && profileFor(entry.resource.resourceType);
    if (!url || (isCopy(entry, createOnly) && entryIssues(entry, i, types).length > 0)) return;
    entry.resource!.meta = { ...entry.resource!.meta, profile: [url] };
  });
}

const isCopy = (entry: BundleEntry, createOnly: readonly string[]): boolean => entry.fullUrl !== undefined && createOnly.includes(entry.fullUrl);

function entryIssues(entry: BundleEntry, index: number, types: FullUrlTypes): OperationOutcomeIssue[] {
  const profile = entry.resource && PROFILES.byType.get(entry.resource.resourceType);
  return profile ? checkResource(profile, entry.resource!, `Bundle.entry[${index}].resource`, types) : [];
}

/** Built on the first `urn:uuid:` reference only: mapped bundles reference by `Type/id`. */
function fullUrlTypes(bundle: Bundle): FullUrlTypes {
  let byFullUrl: Map<string | undefined, string | undefined> | undefined;
  return (fullUrl) => (byFullUrl ??= new Map((bundle.entry ?? []).map((e) => [e.fullUrl, e.resource?.resourceType]))).get(fullUrl);
}
