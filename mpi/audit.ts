/**
 * AuditEvents for the consortium office's decisions about identity (link, unlink, merge,
 * review), in the IHE BALP shape: who decided, about which patients, with what outcome.
 */
import type { AuditEvent } from '@medplum/fhirtypes';

export type MpiAction = 'link' | 'unlink' | 'merge' | 'unmerge' | 'review-accept' | 'review-reject';

const LIFECYCLE: Record<MpiAction, string> = { link: 'link', 'review-accept': 'link', unlink: 'unlink', 'review-reject': 'unlink', merge: 'merge', unmerge: 'unmerge' };

export function mpiAuditEvent(action: MpiAction, by: string, patients: string[], detail: string): AuditEvent {
  return {
    resourceType: 'AuditEvent',
    type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110110', display: 'Patient Record' },
    subtype: [
      { system: 'http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle', code: LIFECYCLE[action] },
      { system: 'http://consortium.example/fhir/CodeSystem/mpi-action', code: action },
    ],
    action: 'U',
    recorded: new Date().toISOString(),
    outcome: '0',
    agent: [{ who: { display: by }, requestor: true }],
    source: { observer: { display: 'consortium-fhir-gateway patient index' } },
    entity: [
      ...patients.map((p) => ({ what: { reference: p }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' } })),
      { description: detail },
    ],
  };
}
