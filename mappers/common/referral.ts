/**
 * A received referral form (HL7 v2 REF^I12/I14, the county's 转诊单) as the consortium's
 * referral pair of profiles/referral.ts: a ServiceRequest and the Task its receiver works.
 * Each format's mapper reads its own fields into a ReferralForm; this is the one place the
 * pair is built, so a referral looks the same whichever way it arrived.
 */
import type { CodeableConcept, Identifier, Reference, ServiceRequest, Task } from '@medplum/fhirtypes';
import { DIRECTION, SNOMED_REFERRAL, TASK_CODE, WORKFLOW_CATEGORY, type Direction } from '../../profiles/referral';
import type { MapContext } from '../context';
import type { ResultBuilder } from './result';

export interface ReferralForm {
  /** The sender's referral number: the ids derive from it, so a resent form updates its pair. */
  localId: string;
  identifier: Identifier;
  direction: Direction;
  /** cancelled: the referrer withdrew it (REF^I14, a cancelled 转诊单). */
  cancelled: boolean;
  /** `Patient/<id>` */
  patient: string;
  authoredOn: string;
  /** Organization id of the receiving facility (see receivingFacility). */
  receiver: string;
  priority?: ServiceRequest['priority'];
  /** The requested specialty or service, when the form names one. */
  specialty?: CodeableConcept;
  reasonCode?: CodeableConcept[];
  supportingInfo?: Reference[];
  note?: string[];
}

/** The kinds the pair's ids derive from (ids.ts): one per resource, both from the form number. */
export const REFERRAL_KIND = 'referral';
const TASK_KIND = 'referral-task';

/** The consortium Organization a form's facility name stands for; undefined when it is none of the consortium's. */
export function consortiumFacility(name: string, ctx: MapContext): string | undefined {
  if (ctx.facilities) return ctx.facilities.get(name);
  const own = ctx.source;
  return name === own.facility || own.sendingFacility?.includes(name) ? own.facility : undefined;
}

/**
 * Adds the ServiceRequest (always written: the referrer owns its content) and the Task. The
 * Task of a new or resent referral is create-only: its status is the receiver's to move, and
 * a resend must not put an accepted referral back to `requested`. A cancellation is written,
 * for the store's transition guard to allow or refuse.
 */
export function addReferral(form: ReferralForm, out: ResultBuilder): { serviceRequest: ServiceRequest & { id: string }; task: Task & { id: string } } {
  const requester = out.organization;
  const owner = { reference: `Organization/${form.receiver}` };
  const serviceRequest: ServiceRequest & { id: string } = {
    resourceType: 'ServiceRequest',
    id: out.id(REFERRAL_KIND, form.localId),
    meta: out.meta(),
    identifier: [form.identifier],
    status: form.cancelled ? 'revoked' : 'active',
    intent: 'order',
    category: [{ coding: [SNOMED_REFERRAL, WORKFLOW_CATEGORY.referral] }, { coding: [DIRECTION[form.direction]] }],
    ...(form.priority && { priority: form.priority }),
    code: form.specialty ?? { coding: [SNOMED_REFERRAL], text: DIRECTION[form.direction].display },
    subject: { reference: form.patient },
    authoredOn: form.authoredOn,
    requester,
    performer: [owner],
    ...(form.reasonCode?.length && { reasonCode: form.reasonCode }),
    ...(form.supportingInfo?.length && { supportingInfo: form.supportingInfo }),
    ...(form.note?.length && { note: form.note.map((text) => ({ text })) }),
  };
  const focus = { reference: `ServiceRequest/${serviceRequest.id}` };
  const task: Task & { id: string } = {
    resourceType: 'Task',
    id: out.id(TASK_KIND, form.localId),
    meta: out.meta(),
    identifier: [form.identifier],
    basedOn: [focus],
    status: form.cancelled ? 'cancelled' : 'requested',
    intent: 'order',
    ...(form.priority && { priority: form.priority }),
    code: { coding: [TASK_CODE] },
    focus,
    for: { reference: form.patient },
    authoredOn: form.authoredOn,
    requester,
    owner,
  };
  out.add(serviceRequest);
  out.add(task, !form.cancelled);
  return { serviceRequest, task };
}
