/**
 * What the store records beside each resource version for the access rules (store/access.ts):
 * its author, whether it is sensitive, the Patients it is about, and for a Consent whether it
 * is an opt-out. Pure: computed from the resource and its index rows at write time.
 */
import type { Coding, Consent, Resource, Task } from '@medplum/fhirtypes';
import { AUTHOR_TAG_SYSTEM } from './access';
import { patientCompartmentKeys } from './compartment';
import type { IndexRows } from './index-rows';

export interface AccessOptions {
  /** MRN identifier system -> the facility (Organization id) that issues it. */
  mrnSystems?: Record<string, string>;
  /** meta.security codes that make a resource visible only to its author. */
  sensitiveCodes?: { system: string; code: string }[];
}

const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

/** HL7 sensitivity categories (ethnicity, HIV, psychiatry, sexual violence, sexuality, STD, substance use) and restricted / very restricted confidentiality. */
export const DEFAULT_SENSITIVE_CODES: { system: string; code: string }[] = [
  ...['ETH', 'HIV', 'PSY', 'SDV', 'SEX', 'STD', 'SUD'].map((code) => ({ system: ACT_CODE, code })),
  ...['R', 'V'].map((code) => ({ system: CONFIDENTIALITY, code })),
];

export interface AccessLabels {
  author: string | null;
  sensitive: boolean;
  patients: string[];
}

let compartmentKeys: Set<string> | undefined;

export function accessLabels(resource: Resource & { id: string }, index: IndexRows, sensitiveCodes: Set<string>): AccessLabels {
  compartmentKeys ??= new Set(patientCompartmentKeys());
  const patients = new Set(index.reference.filter((r) => r.targetType === 'Patient' && compartmentKeys!.has(r.p)).map((r) => r.targetId));
  if (resource.resourceType === 'Patient') patients.add(resource.id);
  return {
    author: authorOf(resource),
    sensitive: resource.meta?.security?.some((c) => sensitiveCodes.has(codingKey(c))) ?? false,
    patients: [...patients],
  };
}

export function sensitiveCodeSet(options?: AccessOptions): Set<string> {
  return new Set((options?.sensitiveCodes ?? DEFAULT_SENSITIVE_CODES).map(codingKey));
}

function codingKey(c: Coding): string {
  return `${c.system ?? ''}|${c.code ?? ''}`;
}

export function authorOf(resource: Resource): string | null {
  return resource.meta?.tag?.find((t) => t.system === AUTHOR_TAG_SYSTEM)?.code ?? null;
}

/** The resource tagged as written by `facility`, whatever author tag the client sent. */
export function stampAuthor<T extends Resource>(resource: T, facility: string): T {
  const tag = [...(resource.meta?.tag ?? []).filter((t) => t.system !== AUTHOR_TAG_SYSTEM), { system: AUTHOR_TAG_SYSTEM, code: facility }];
  return { ...resource, meta: { ...resource.meta, tag } };
}

/**
 * The Patient id a Consent opts out of sharing for, or null: an active patient-privacy Consent
 * whose base provision denies. Nested provisions (exceptions for some actors or data) are not
 * read, so such a Consent hides everything: erring towards privacy.
 */
export function optOutOf(resource: Resource): string | null {
  if (resource.resourceType !== 'Consent') return null;
  const consent = resource as Consent;
  if (consent.status !== 'active' || consent.provision?.type !== 'deny') return null;
  if (!consent.scope?.coding?.some((c) => c.code === 'patient-privacy')) return null;
  return referenceId(consent.patient?.reference, 'Patient');
}

/** Task statuses in which the Task still asks its owner to act. */
const OPEN_TASK = new Set(['requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold']);

/**
 * The care relationship a Task between two facilities about one patient makes (store/access.ts),
 * or null when it makes none: while open, a treatment relationship (both ends read the
 * person's records past an opt-out); once completed, a disclosure of what it carried (the
 * Task, its focus and the focus's supportingInfo, its inputs and outputs), which both ends
 * keep reading. Cancelled, rejected or failed Tasks leave nothing behind.
 */
export interface CareRelation {
  patient: string;
  facilities: string[];
  kind: 'treatment' | 'disclosure';
  /** For a disclosure: the references of the records it carried itself; the focus's supportingInfo is read in the store, which keeps only `Type/id` ones. */
  carried: string[];
  focus?: string;
}

export function careRelationOf(resource: Resource & { id: string }): CareRelation | null {
  if (resource.resourceType !== 'Task') return null;
  const task = resource as Task & { id: string };
  const kind = task.status && OPEN_TASK.has(task.status) ? 'treatment' : task.status === 'completed' ? 'disclosure' : null;
  const patient = referenceId(task.for?.reference, 'Patient');
  const facilities = [referenceId(task.requester?.reference, 'Organization'), referenceId(task.owner?.reference, 'Organization')];
  if (!kind || !patient || facilities.some((f) => f === null)) return null;
  const focus = task.focus?.reference;
  // References as written: the store keeps the ones naming a resource of its own (`Type/id`), with the focus's supportingInfo.
  const carried = kind === 'treatment' ? [] : [`Task/${task.id}`, ...(focus ? [focus] : []), ...[...(task.input ?? []), ...(task.output ?? [])].flatMap((p) => (p.valueReference?.reference ? [p.valueReference.reference] : []))];
  return { patient, facilities: [...new Set(facilities as string[])], kind, carried: [...new Set(carried)], ...(focus ? { focus } : {}) };
}

function referenceId(reference: string | undefined, type: string): string | null {
  const match = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})$`).exec(reference ?? '');
  return match ? match[1] : null;
}
