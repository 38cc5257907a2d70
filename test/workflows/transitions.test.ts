/**
 * Every move of a referral Task, allowed and refused, through the store's guard as the store
 * calls it (pure: no database). A: the referring centre, B: the receiving hospital, C: a third
 * facility, undefined: the consortium office.
 */
import type { Task } from '@medplum/fhirtypes';
import { TASK_CODE } from '../../profiles/referral';
import { FhirError } from '../../store/errors';
import { workflowTaskGuard } from '../../workflows/referral/guard';

const A = 'community-centre-a';
const B = 'city-hospital';
const C = 'county-hospital';

const task = (status: Task['status'], extra: Partial<Task> = {}): Task => ({
  resourceType: 'Task',
  id: 't1',
  status,
  intent: 'order',
  code: { coding: [TASK_CODE] },
  focus: { reference: 'ServiceRequest/sr1' },
  for: { reference: 'Patient/p1' },
  requester: { reference: `Organization/${A}` },
  owner: { reference: `Organization/${B}` },
  meta: { tag: [{ system: 'http://consortium.example/fhir/CodeSystem/author-facility', code: A }] },
  ...extra,
});

/** The guard's verdict: the author kept, or the HTTP status and the element it names. */
function verdict(facility: string | undefined, prior: Task | undefined, next: Task | undefined): string {
  try {
    const out = workflowTaskGuard.check({ facility, id: 't1', prior, next });
    return out ? `ok author=${out.author}` : 'author rule';
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    return `${err.status} ${err.expression?.join(',')}`;
  }
}

const REASON = { statusReason: { text: '本院无床位' } };

describe('referral Task transitions', () => {
  it.each([
    // [writer, from, to, expected]
    [B, 'requested', 'accepted', 'ok author=community-centre-a'],
    [B, 'requested', 'rejected', 'ok author=community-centre-a'],
    [A, 'requested', 'cancelled', 'ok author=community-centre-a'],
    [B, 'accepted', 'in-progress', 'ok author=community-centre-a'],
    [A, 'accepted', 'cancelled', 'ok author=community-centre-a'],
    [B, 'in-progress', 'completed', 'ok author=community-centre-a'],
    [B, 'in-progress', 'failed', 'ok author=community-centre-a'],
    [A, 'draft', 'requested', 'ok author=community-centre-a'],
    [A, 'draft', 'cancelled', 'ok author=community-centre-a'],
    [undefined, 'requested', 'accepted', 'ok author=community-centre-a'],
    [undefined, 'in-progress', 'completed', 'ok author=community-centre-a'],
  ] as const)('%s moves %s -> %s: %s', (writer, from, to, expected) => {
    expect(verdict(writer, task(from), task(to, to === 'rejected' ? REASON : {}))).toBe(expected);
  });

  it.each([
    // the wrong end of the referral
    [A, 'requested', 'accepted', '403 Task.status'],
    [A, 'requested', 'rejected', '403 Task.status'],
    [B, 'requested', 'cancelled', '403 Task.status'],
    [A, 'accepted', 'in-progress', '403 Task.status'],
    [A, 'in-progress', 'completed', '403 Task.status'],
    [B, 'draft', 'requested', '403 Task.status'],
    // a facility on neither end
    [C, 'requested', 'accepted', '403 Task'],
    [C, 'requested', 'cancelled', '403 Task'],
    // not from this state, whoever asks
    [B, 'requested', 'completed', '409 Task.status'],
    [B, 'requested', 'in-progress', '409 Task.status'],
    [B, 'accepted', 'completed', '409 Task.status'],
    [A, 'in-progress', 'cancelled', '409 Task.status'],
    [B, 'completed', 'in-progress', '409 Task.status'],
    [A, 'cancelled', 'requested', '409 Task.status'],
    [B, 'rejected', 'accepted', '409 Task.status'],
    [undefined, 'completed', 'requested', '409 Task.status'],
    [undefined, 'requested', 'completed', '409 Task.status'],
  ] as const)('%s moving %s -> %s is refused: %s', (writer, from, to, expected) => {
    expect(verdict(writer, task(from), task(to, to === 'rejected' ? REASON : {}))).toBe(expected);
  });

  it('a rejection must say why', () => {
    expect(verdict(B, task('requested'), task('rejected'))).toBe('409 Task.statusReason');
  });

  it('edits that keep the status: the requester while it is asked, the owner while it works', () => {
    const note = { note: [{ text: '已电话联系' }] };
    expect(verdict(A, task('requested'), task('requested', { priority: 'urgent' }))).toBe('ok author=community-centre-a');
    expect(verdict(B, task('requested'), task('requested', note))).toBe('403 Task');
    expect(verdict(B, task('in-progress'), task('in-progress', note))).toBe('ok author=community-centre-a');
    expect(verdict(A, task('in-progress'), task('in-progress', note))).toBe('403 Task');
    expect(verdict(B, task('completed'), task('completed', note))).toBe('409 Task.status');
  });

  it('what the Task is about and between whom never changes', () => {
    for (const [field, value] of [
      ['for', { reference: 'Patient/p2' }],
      ['owner', { reference: `Organization/${C}` }],
      ['requester', { reference: `Organization/${C}` }],
      ['focus', { reference: 'ServiceRequest/sr2' }],
      ['code', { text: 'other' }],
    ] as const) {
      expect([field, verdict(B, task('requested'), task('accepted', { [field]: value }))]).toEqual([field, `409 Task.${field}`]);
    }
  });

  it('the same values with their keys in another order are no change (the store gives JSONB back in its own key order)', () => {
    const reordered = task('cancelled', { code: { coding: [{ code: TASK_CODE.code, system: TASK_CODE.system }] }, owner: { reference: `Organization/${B}` } });
    expect(verdict(A, task('requested'), reordered)).toBe(`ok author=${A}`);
  });

  it('creation: by the requester, as requested or draft, between two facilities about a patient', () => {
    expect(verdict(A, undefined, task('requested'))).toBe('ok author=community-centre-a');
    expect(verdict(B, undefined, task('requested'))).toBe('403 Task.requester');
    expect(verdict(A, undefined, task('accepted'))).toBe('422 Task.status');
    expect(verdict(A, undefined, task('requested', { owner: { reference: `Organization/${A}` } }))).toBe('422 Task.owner');
    expect(verdict(A, undefined, task('requested', { for: undefined }))).toBe('422 Task.for');
    expect(verdict(A, undefined, task('requested', { owner: { reference: 'Practitioner/x' } }))).toBe('422 Task.owner');
    expect(verdict(A, undefined, task('requested', { focus: { reference: 'Patient/p1' } }))).toBe('422 Task.focus');
  });

  it('other Tasks are left to the author rule, and none becomes a referral Task after the fact', () => {
    const plain: Task = { resourceType: 'Task', status: 'requested', intent: 'order' };
    expect(verdict(B, undefined, plain)).toBe('author rule');
    expect(verdict(B, plain, { ...plain, status: 'completed' })).toBe('author rule');
    expect(verdict(A, plain, task('requested'))).toBe('403 Task.code');
    expect(verdict(A, task('requested'), undefined)).toBe('author rule');
  });
});
