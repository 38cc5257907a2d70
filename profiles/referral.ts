/**
 * The consortium's workflow shapes (issue 7), shared by the mappers that receive referral
 * forms, the store's transition guard and the workflow services, so that a referral made over
 * FHIR, HL7 v2 REF^I12 or the county's JSON form is the same pair of resources:
 *
 * - a ServiceRequest (intent `order`) whose category holds WORKFLOW_CATEGORY.referral (or
 *   .reading for a remote reading) and a DIRECTION coding, `requester` the referring
 *   Organization (or a PractitionerRole of it), `performer[0]` the receiving Organization,
 *   `reasonCode`/`reasonReference` the why, `priority` routine | urgent | asap | stat, and
 *   `supportingInfo` the records that travel with it (results, diagnoses, medications, a
 *   discharge summary for a down-referral);
 * - a Task (intent `order`, code TASK_CODE) whose `focus` is that ServiceRequest, `for` the
 *   patient, `requester` the referring Organization and `owner` the receiving one. Its status
 *   is the referral's state; who may move it is in workflows/referral/transitions.ts.
 */
import type { Resource, Task } from '@medplum/fhirtypes';

export const WORKFLOW_CATEGORY_SYSTEM = 'http://consortium.example/fhir/CodeSystem/workflow-category';
export const DIRECTION_SYSTEM = 'http://consortium.example/fhir/CodeSystem/referral-direction';

/** SNOMED CT 3457005 |Patient referral| is what HL7's referral guides put in ServiceRequest.category. */
export const SNOMED_REFERRAL = { system: 'http://snomed.info/sct', code: '3457005', display: 'Patient referral' };

export const WORKFLOW_CATEGORY = {
  referral: { system: WORKFLOW_CATEGORY_SYSTEM, code: 'referral', display: '双向转诊 two-way referral' },
  reading: { system: WORKFLOW_CATEGORY_SYSTEM, code: 'remote-reading', display: '远程诊断 remote reading' },
} as const;

export type Direction = 'up' | 'down';
export const DIRECTION: Record<Direction, { system: string; code: Direction; display: string }> = {
  up: { system: DIRECTION_SYSTEM, code: 'up', display: '上转 up-referral' },
  down: { system: DIRECTION_SYSTEM, code: 'down', display: '下转 down-referral' },
};

/** Task.code: the Task asks its owner to fulfil the focal ServiceRequest. */
export const TASK_CODE = { system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill' };

export type WorkflowKind = 'referral' | 'reading';

/** Whether a Task is a consortium workflow Task (its code is TASK_CODE). */
export function isWorkflowTask(resource: Resource | undefined): resource is Task {
  return resource?.resourceType === 'Task' && ((resource as Task).code?.coding ?? []).some((c) => c.system === TASK_CODE.system && c.code === TASK_CODE.code);
}

/** The workflow a ServiceRequest's categories make it part of, if any. */
export function workflowKindOf(categories: { coding?: { system?: string; code?: string }[] }[] | undefined): WorkflowKind | undefined {
  for (const c of categories ?? []) {
    for (const coding of c.coding ?? []) {
      if (coding.system !== WORKFLOW_CATEGORY_SYSTEM) continue;
      if (coding.code === WORKFLOW_CATEGORY.referral.code) return 'referral';
      if (coding.code === WORKFLOW_CATEGORY.reading.code) return 'reading';
    }
  }
  return undefined;
}

/** The direction a referral's categories name, if any. */
export function directionOf(categories: { coding?: { system?: string; code?: string }[] }[] | undefined): Direction | undefined {
  const code = categories?.flatMap((c) => c.coding ?? []).find((c) => c.system === DIRECTION_SYSTEM)?.code;
  return code === 'up' || code === 'down' ? code : undefined;
}
