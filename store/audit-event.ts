/**
 * AuditEvents in the IHE Basic Audit Log Patterns (BALP) shape, built from a plain description
 * of what happened. One builder for every AuditEvent the gateway writes: the REST trail
 * (gateway/audit) and the patient index's office decisions (mpi/audit). It lives here, beside
 * the other FHIR semantics, because the patient index may import the store but not the gateway.
 * Pure: the caller supplies the id and the time.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity, CodeableConcept, Coding } from '@medplum/fhirtypes';

export const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
export const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
export const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
export const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
export const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
export const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
export const ROLE_CLASS = 'http://terminology.hl7.org/CodeSystem/v3-RoleClass';
export const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
/** Identifier system of the gateway's registered clients (OAuth client ids). */
export const CLIENT_ID_SYSTEM = 'http://consortium.example/fhir/sid/client-id';
/** Code system of the operation a REST `operation` event ran (`$everything`, `$mpi-merge`...). */
export const OPERATION_SYSTEM = 'http://consortium.example/fhir/CodeSystem/operation';

/** The R4 restful-interaction codes the gateway serves. */
export type RestInteraction =
  | 'create'
  | 'read'
  | 'vread'
  | 'update'
  | 'patch'
  | 'delete'
  | 'search-type'
  | 'search-system'
  | 'history-instance'
  | 'history-type'
  | 'history-system'
  | 'operation'
  | 'transaction'
  | 'batch'
  | 'capabilities';

/** BALP: reads are R, searches are queries (E), operations and bundles execute (E). */
const REST_ACTION: Record<RestInteraction, AuditEvent['action']> = {
  create: 'C',
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  'history-type': 'R',
  'history-system': 'R',
  capabilities: 'R',
  update: 'U',
  patch: 'U',
  delete: 'D',
  'search-type': 'E',
  'search-system': 'E',
  operation: 'E',
  transaction: 'E',
  batch: 'E',
};

/**
 * What happened: a REST interaction (the BALP `rest` events), or another kind of event whose
 * type and subtypes the caller names (the patient index's record-lifecycle decisions).
 */
export type AuditWhat =
  | { interaction: RestInteraction; /** e.g. `$everything` */ operation?: string }
  | { type: Coding; subtype: Coding[]; action: NonNullable<AuditEvent['action']> };

export interface AuditInput {
  id: string;
  /** ISO instant. */
  recorded: string;
  what: AuditWhat;
  /** HTTP status of the answer; undefined when none was completed (connection lost). */
  status?: number;
  /**
   * The system that called: its registered client id (absent for a caller that never
   * authenticated), the facility (Organization id) it acts for, its network address.
   */
  client?: { id?: string; facility?: string; address?: string };
  /** The person behind the request: a clinician's `fhirUser`, or only a name (an office operator). */
  user?: { fhirUser?: string; name?: string };
  /** Break-the-glass reason: the requestor claimed an emergency to see restricted records. */
  breakGlass?: string;
  /** The resource acted on, `Type/id` (or `Type/id/_history/v`). */
  resource?: string;
  /** Patients whose records were touched, as `Patient/id`. */
  patients?: string[];
  /** The query of a search, as sent (`Observation?patient=...`). */
  query?: string;
  /** The system recording the event. */
  observer: { name: string; url?: string };
  /** Free-text detail kept with the event (e.g. what a merge did). */
  detail?: string;
}

/**
 * AuditEvent.outcome from an HTTP status: 0 success, 4 the request failed (4xx), 8 the server
 * failed (5xx), 12 no answer could be completed at all.
 */
export function auditOutcome(status: number | undefined): NonNullable<AuditEvent['outcome']> {
  if (status === undefined || status < 100) return '12';
  if (status < 400) return '0';
  if (status < 500) return '4';
  return '8';
}

export function buildAuditEvent(input: AuditInput): AuditEvent {
  const rest = 'interaction' in input.what ? input.what : undefined;
  const lifecycle = 'interaction' in input.what ? undefined : input.what;
  const outcome = auditOutcome(input.status);
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    id: input.id,
    type: rest ? { system: AUDIT_EVENT_TYPE, code: 'rest', display: 'Restful Operation' } : lifecycle!.type,
    subtype: rest
      ? [{ system: RESTFUL_INTERACTION, code: rest.interaction }, ...(rest.operation ? [{ system: OPERATION_SYSTEM, code: rest.operation }] : [])]
      : lifecycle!.subtype,
    action: rest ? REST_ACTION[rest.interaction] : lifecycle!.action,
    recorded: input.recorded,
    outcome,
    ...(outcome !== '0' ? { outcomeDesc: input.status === undefined ? 'no response completed' : `HTTP ${input.status}` } : {}),
    agent: agents(input),
    source: {
      observer: { display: input.observer.name },
      type: [{ system: SOURCE_TYPE, code: '4', display: 'Application Server' }],
    },
  };
  const entity = entities(input);
  if (entity.length > 0) event.entity = entity;
  return event;
}

/**
 * BALP agents: the client system (Source Role ID), the user (information recipient) when there
 * is one, the server (Destination Role ID), and the facility the client acts for. The user is
 * the requestor when present, the client otherwise; break-glass rides on the requestor.
 */
function agents(input: AuditInput): AuditEventAgent[] {
  const purposeOfUse: CodeableConcept[] | undefined = input.breakGlass
    ? [{ coding: [{ system: ACT_REASON, code: 'BTG', display: 'break the glass' }], text: input.breakGlass }]
    : undefined;
  const out: AuditEventAgent[] = [];
  const user = input.user;
  if (user) {
    out.push({
      type: { coding: [{ system: PARTICIPATION_TYPE, code: 'IRCP', display: 'information recipient' }] },
      who: { ...(user.fhirUser ? { reference: user.fhirUser } : {}), ...(user.name ? { display: user.name } : {}) },
      ...(user.name ? { name: user.name } : {}),
      requestor: true,
      ...(purposeOfUse ? { purposeOfUse } : {}),
    });
  }
  const client = input.client;
  // Without a user the client is the only party to name, anonymous if it never authenticated.
  if (client || !user) {
    out.push({
      type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
      who: client?.id ? { identifier: { system: CLIENT_ID_SYSTEM, value: client.id }, display: client.id } : { display: 'anonymous' },
      requestor: !user,
      ...(!user && purposeOfUse ? { purposeOfUse } : {}),
      ...(client?.address ? { network: { address: client.address, type: '2' as const } } : {}),
    });
  }
  if (input.observer.url) {
    out.push({
      type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] },
      who: { display: input.observer.name },
      requestor: false,
      network: { address: input.observer.url, type: '5' },
    });
  }
  if (client?.facility) {
    out.push({
      type: { coding: [{ system: ROLE_CLASS, code: 'PROV', display: 'healthcare provider' }] },
      who: { reference: `Organization/${client.facility}` },
      requestor: false,
    });
  }
  return out;
}

/**
 * BALP entities: the resource (a domain resource), each patient (role Patient, which is what
 * `AuditEvent?patient=` indexes), and the query of a search, base64 as `entity.query` wants.
 */
function entities(input: AuditInput): AuditEventEntity[] {
  const out: AuditEventEntity[] = [];
  if (input.resource) {
    out.push({ what: { reference: input.resource }, type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } });
  }
  for (const patient of new Set(input.patients ?? [])) {
    out.push({ what: { reference: patient }, type: { system: ENTITY_TYPE, code: '1', display: 'Person' }, role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } });
  }
  if (input.query !== undefined) {
    out.push({ type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '24', display: 'Query' }, query: Buffer.from(input.query, 'utf8').toString('base64') });
  }
  if (input.detail) out.push({ description: input.detail });
  return out;
}
