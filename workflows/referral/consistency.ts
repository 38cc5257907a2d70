/**
 * What a workflow Task must agree on with the ServiceRequest it fulfils, checked in the write's
 * transaction (a WriteObserver: the ServiceRequest may be in the same Bundle): the patient, the
 * facility asked (the ServiceRequest's performer owns the Task), and, for a remote reading,
 * that completing it hands back the signed report. The transition rules (./transitions.ts)
 * need nothing but the Task; these need the store.
 */
import type { ServiceRequest, Task } from '@medplum/fhirtypes';
import { isWorkflowTask, workflowKindOf } from '../../profiles/referral';
import { FhirError, unprocessable } from '../../store/errors';
import type { WriteObserver } from '../../store/repository';

export const workflowConsistency: WriteObserver = async (repo, written) => {
  for (const w of written) {
    if (w.type !== 'Task' || !w.json || w.origin !== undefined) continue;
    const task = JSON.parse(w.json) as Task;
    if (!isWorkflowTask(task)) continue;
    const focus = task.focus?.reference;
    if (!focus?.startsWith('ServiceRequest/')) throw unprocessable('A referral or reading Task\'s focus must be its ServiceRequest', ['Task.focus']);
    let sr: ServiceRequest;
    try {
      sr = (await repo.read('ServiceRequest', focus.slice('ServiceRequest/'.length))).resource as ServiceRequest;
    } catch (err) {
      if (err instanceof FhirError && err.status < 500) throw unprocessable(`Task.focus ${focus} is not a stored ServiceRequest`, ['Task.focus']);
      throw err;
    }
    if (task.meta?.versionId === '1') checkPair(task, sr);
    if (task.status === 'completed' && workflowKindOf(sr.category) === 'reading' && !task.output?.some((o) => o.valueReference?.reference?.startsWith('DiagnosticReport/'))) {
      throw unprocessable('Completing a remote reading hands back the signed report: Task.output needs a valueReference to the DiagnosticReport', ['Task.output']);
    }
  }
};

/** Fixed at creation (the transitions keep them so): the Task is for the ServiceRequest's patient and owned by the facility it asks. */
function checkPair(task: Task, sr: ServiceRequest): void {
  if (sr.subject?.reference !== task.for?.reference) {
    throw unprocessable(`Task.for ${task.for?.reference ?? '(none)'} is not the ServiceRequest's subject ${sr.subject?.reference ?? '(none)'}`, ['Task.for']);
  }
  const asked = sr.performer?.[0]?.reference;
  if (asked?.startsWith('Organization/') && asked !== task.owner?.reference) {
    throw unprocessable(`Task.owner ${task.owner?.reference ?? '(none)'} is not the facility the ServiceRequest asks (${asked})`, ['Task.owner']);
  }
}
