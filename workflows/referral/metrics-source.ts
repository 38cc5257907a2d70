/**
 * Loads the workflow cases requested in a period for workflows/referral/metrics.ts: every
 * version of the workflow Tasks changed since the period began (type history, keyset-paged),
 * and their ServiceRequests. Reads through an unrestricted repository: the figures are the
 * consortium office's.
 */
import type { ServiceRequest, Task } from '@medplum/fhirtypes';
import { isWorkflowTask } from '../../profiles/referral';
import type { Repository } from '../../store/repository';
import type { Cursor } from '../../store/search/query';
import type { WorkflowCase } from './metrics';

const PAGE = 1000;

export async function loadCases(repo: Repository, since: string): Promise<WorkflowCase[]> {
  const versions = new Map<string, Task[]>();
  let cursor: Cursor | undefined;
  do {
    const page = await repo.history({ type: 'Task' }, { since, count: PAGE, cursor });
    for (const entry of page.entries) {
      if (entry.deleted) continue;
      const task = entry.resource as Task;
      if (!isWorkflowTask(task)) continue;
      versions.set(entry.id, [...(versions.get(entry.id) ?? []), task]);
    }
    cursor = page.next;
  } while (cursor);
  // A Task created before `since` shows only its later versions: it belongs to an earlier period.
  const cases = [...versions.values()].map((v) => v.sort((a, b) => Number(a.meta!.versionId) - Number(b.meta!.versionId))).filter((v) => v[0].meta!.versionId === '1');
  const requestIds = [...new Set(cases.map((v) => v[0].focus?.reference?.match(/^ServiceRequest\/(.+)$/)?.[1]).filter((id): id is string => id !== undefined))];
  const requests = new Map<string, ServiceRequest>();
  for (let i = 0; i < requestIds.length; i += PAGE) {
    const found = await repo.search('ServiceRequest', [['_id', requestIds.slice(i, i + PAGE).join(',')]], {}, PAGE);
    for (const m of found.matches) requests.set(`ServiceRequest/${m.id}`, m.resource as ServiceRequest);
  }
  return cases.map((v) => ({ versions: v, request: requests.get(v[0].focus?.reference ?? '') }));
}
