/**
 * AuditEvents for the consortium office's decisions about identity (link, unlink, merge,
 * review), in the IHE BALP shape: who decided, about which patients, with what outcome.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '@medplum/fhirtypes';
import { buildAuditEvent, DCM } from '../store/audit-event';

export type MpiAction = 'link' | 'unlink' | 'merge' | 'unmerge' | 'review-accept' | 'review-reject';

const LIFECYCLE: Record<MpiAction, string> = { link: 'link', 'review-accept': 'link', unlink: 'unlink', 'review-reject': 'unlink', merge: 'merge', unmerge: 'unmerge' };

export function mpiAuditEvent(action: MpiAction, by: string, patients: string[], detail: string): AuditEvent {
  return buildAuditEvent({
    id: randomUUID(),
    recorded: new Date().toISOString(),
    what: {
      type: { system: DCM, code: '110110', display: 'Patient Record' },
      subtype: [
        { system: 'http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle', code: LIFECYCLE[action] },
        { system: 'http://consortium.example/fhir/CodeSystem/mpi-action', code: action },
      ],
      action: 'U',
    },
    status: 200,
    user: { name: by },
    patients,
    observer: { name: 'consortium-fhir-gateway patient index' },
    detail,
  });
}
