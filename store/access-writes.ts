/**
 * The write rules of store/access.ts for a facility context: a facility changes only what it
 * wrote, and registers only its own patients (a Patient carrying another facility's MRN would
 * let it claim that facility's registration in the patient index).
 */
import type { Patient, Resource } from '@medplum/fhirtypes';
import { forbidden } from './errors';

export function checkFacilityWrite(
  facility: string,
  target: { type: string; id: string; at?: string },
  prior: { author: string | null } | undefined,
  resource: Resource | undefined,
  mrnSystems: Record<string, string>,
): void {
  const key = `${target.type}/${target.id}`;
  if (prior && prior.author !== facility) {
    throw forbidden(`${key} was written by ${prior.author ?? 'no facility (the consortium)'}: ${facility} may change only its own records`);
  }
  if (resource?.resourceType !== 'Patient') return;
  (resource as Patient).identifier?.forEach((identifier, i) => {
    const issuer = identifier.system === undefined ? undefined : mrnSystems[identifier.system];
    if (issuer !== undefined && issuer !== facility) {
      throw forbidden(`${key} carries an MRN of ${issuer} (${identifier.system}): ${facility} may register only its own patients`, [`${target.at ?? 'Patient'}.identifier[${i}]`]);
    }
  });
}
