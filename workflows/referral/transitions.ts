/**
 * Who may move a consortium workflow Task (a referral or a remote reading, profiles/referral.ts)
 * and from which state. Pure: the store calls it through the guard in ./guard.ts.
 *
 *   draft ──requester──> requested ──owner──> accepted ──owner──> in-progress ──owner──> completed
 *     │                      │  └──owner──> rejected (statusReason)              └──owner──> failed
 *     └──requester──> cancelled <──requester── (requested, accepted)
 *
 * The requester is the facility that asked, the owner the one asked. The consortium office
 * (no facility) may make any of these moves, but no other: a closed Task stays closed.
 */
import type { Task } from '@medplum/fhirtypes';
import { deepEqual } from '../../store/deep-equal';
import { conflict, forbidden, unprocessable } from '../../store/errors';

export type Role = 'requester' | 'owner';
type Status = NonNullable<Task['status']>;

const MOVES: Partial<Record<Status, Partial<Record<Status, Role>>>> = {
  draft: { requested: 'requester', cancelled: 'requester' },
  requested: { accepted: 'owner', rejected: 'owner', cancelled: 'requester' },
  accepted: { 'in-progress': 'owner', cancelled: 'requester' },
  'in-progress': { completed: 'owner', failed: 'owner' },
};

/** Edits that keep the status: who may make them, in which state (the requester amends its request, the owner records progress). */
const EDITS: Partial<Record<Status, Role[]>> = {
  draft: ['requester'],
  requested: ['requester'],
  accepted: ['owner'],
  'in-progress': ['owner'],
};

/** What a Task is about and between whom: fixed once it is created. */
const FIXED = ['for', 'focus', 'basedOn', 'requester', 'owner', 'code', 'intent'] as const;

/** The roles `facility` plays on `task` (undefined facility: the office, which plays both). */
export function rolesOf(task: Task, facility: string | undefined): Role[] {
  if (facility === undefined) return ['requester', 'owner'];
  const roles: Role[] = [];
  if (task.requester?.reference === `Organization/${facility}`) roles.push('requester');
  if (task.owner?.reference === `Organization/${facility}`) roles.push('owner');
  return roles;
}

/** Checks a new workflow Task; throws a FhirError (403 not this writer's move, 409 not from this state, 422 not a valid referral Task). */
export function checkCreate(task: Task, facility: string | undefined): void {
  if (task.status !== 'draft' && task.status !== 'requested') {
    throw unprocessable(`A new referral Task starts as requested (or draft), not ${task.status ?? 'without a status'}`, ['Task.status']);
  }
  for (const [field, type] of [['requester', 'Organization'], ['owner', 'Organization'], ['for', 'Patient']] as const) {
    if (!new RegExp(`^${type}/[A-Za-z0-9\\-.]{1,64}$`).test(task[field]?.reference ?? '')) {
      throw unprocessable(`A referral Task needs Task.${field} referencing a ${type}`, [`Task.${field}`]);
    }
  }
  if (!task.focus?.reference?.startsWith('ServiceRequest/')) throw unprocessable('A referral Task needs Task.focus referencing its ServiceRequest', ['Task.focus']);
  if (task.requester!.reference === task.owner!.reference) throw unprocessable('A referral Task cannot be owned by the facility that requests it', ['Task.owner']);
  if (!rolesOf(task, facility).includes('requester')) {
    throw forbidden(`${facility} may request only in its own name: Task.requester is ${task.requester!.reference}`, ['Task.requester']);
  }
}

/** Checks a change of a workflow Task from `prior` to `next` by `facility`; throws a FhirError (403 not this writer's move, 409 not from this state, 422 not a valid referral Task). */
export function checkChange(prior: Task, next: Task, facility: string | undefined): void {
  const roles = rolesOf(prior, facility);
  if (roles.length === 0) throw forbidden(`${facility} is neither the requester nor the owner of this Task`, ['Task']);
  for (const field of FIXED) {
    if (!deepEqual(prior[field], next[field])) {
      throw conflict(`Task.${field} cannot change once the Task is created (start a new referral instead)`, [`Task.${field}`]);
    }
  }
  const from = prior.status!;
  const to = next.status;
  if (to === from) {
    const editors = EDITS[from];
    if (!editors) throw conflict(`The Task is ${from}: it is closed and cannot change`, ['Task.status']);
    if (!editors.some((r) => roles.includes(r))) throw forbidden(`While the Task is ${from}, only its ${editors.join(' or ')} may change it`, ['Task']);
    return;
  }
  const allowed = MOVES[from] ?? {};
  const who = to ? allowed[to] : undefined;
  if (!who) {
    const options = Object.keys(allowed);
    throw conflict(`A Task cannot go from ${from} to ${to ?? 'no status'}${options.length ? ` (from ${from}: ${options.join(', ')})` : `: ${from} is final`}`, ['Task.status']);
  }
  if (!roles.includes(who)) throw forbidden(`Only the Task's ${who} may move it from ${from} to ${to}`, ['Task.status']);
  if (to === 'rejected' && !next.statusReason?.text && !next.statusReason?.coding?.length) {
    throw conflict('A rejected referral needs Task.statusReason saying why', ['Task.statusReason']);
  }
}
