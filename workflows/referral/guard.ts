/**
 * The store's WriteGuard for consortium workflow Tasks (code TASK_CODE, profiles/referral.ts):
 * the requester creates it, the owner accepts and completes it, and the version written keeps
 * the requester as author whoever moved it, so the requester can still cancel and both ends
 * keep reading it. Other Tasks stay under the author rule.
 */
import type { Task } from '@medplum/fhirtypes';
import { isWorkflowTask } from '../../profiles/referral';
import { authorOf } from '../../store/access-labels';
import { forbidden } from '../../store/errors';
import type { WriteGuard } from '../../store/repository';
import { checkChange, checkCreate } from './transitions';

export const workflowTaskGuard: WriteGuard = {
  type: 'Task',
  check({ facility, prior, next }) {
    if (!isWorkflowTask(prior)) {
      if (!isWorkflowTask(next)) return undefined;
      if (prior) throw forbidden('A Task cannot be turned into a referral Task: create a new one', ['Task.code']);
      checkCreate(next, facility);
      return { author: facility ?? authorOf(next) };
    }
    // A deletion stays the author's to make (the author rule applies).
    if (!next) return undefined;
    checkChange(prior, next as Task, facility);
    return { author: authorOf(prior) };
  },
};
