/**
 * An AuditEvent for each notification delivered: a notification discloses a record (or, without
 * payload, that one matched) to a facility's system outside the gateway, so it is audited as
 * a read is: DICOM 110106 Export, the subscribing facility as recipient, the version and its
 * patients as entities. Recorded as the REST trail's are, through the AuditRecorder.
 */
import { randomUUID } from 'node:crypto';
import { buildAuditEvent, DCM, OPERATION_SYSTEM } from '../../store/audit-event';
import type { IdentifiedAuditEvent } from '../audit';
import type { NotifyJob } from './queue';
import type { Watch } from './subscription';

export const NOTIFICATION_SUBTYPE = { system: OPERATION_SYSTEM, code: 'subscription-notification', display: 'Subscription notification' };

/** `json`: the version sent, when the channel carried it; its Patient references are the entities. */
export function notificationEvent(watch: Watch, n: NotifyJob, json: string | null, observer: string): IdentifiedAuditEvent {
  // Stored JSON comes back from JSONB with a space after each colon; a client's may have none.
  const patients = json ? [...new Set([...json.matchAll(/"reference":\s*"(Patient\/[A-Za-z0-9\-.]{1,64})"/g)].map((m) => m[1]))] : [];
  if (n.type === 'Patient') patients.push(`Patient/${n.id}`);
  return buildAuditEvent({
    id: randomUUID(),
    recorded: new Date().toISOString(),
    what: { type: { system: DCM, code: '110106', display: 'Export' }, subtype: [NOTIFICATION_SUBTYPE], action: 'R' },
    status: 200,
    client: { facility: watch.author ?? undefined, address: watch.channel.endpoint },
    resource: `${n.type}/${n.id}/_history/${n.version}`,
    patients,
    observer: { name: observer },
    detail: `Subscription/${watch.id} over ${watch.channel.type}${json ? ', with the resource' : ''}`,
  }) as IdentifiedAuditEvent;
}

/** Where notifications' AuditEvents go: the process's AuditRecorder (gateway/audit/recorder.ts), which queues them and falls back to the store, then to disk. */
export interface AuditRecord {
  record(event: IdentifiedAuditEvent): void;
}
