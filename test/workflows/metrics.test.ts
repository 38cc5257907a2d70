/** The office's workflow figures from Task versions (pure): what counts in a period and how. */
import type { ServiceRequest, Task } from '@medplum/fhirtypes';
import { DIRECTION, WORKFLOW_CATEGORY, type Direction } from '../../profiles/referral';
import { monthPeriod } from '../../gateway/workflows/routes';
import { workflowFigures, type WorkflowCase } from '../../workflows/referral/metrics';

const H = 'city-hospital';
const C = 'community-centre-a';

/** A referral case whose Task went through `steps` ([status, minutes after the request]). */
function referral(direction: Direction, from: string, to: string, at: string, steps: [Task['status'], number][], records = 0): WorkflowCase {
  const t0 = Date.parse(at);
  const versions = [['requested', 0] as [Task['status'], number], ...steps].map(([status, minutes], i): Task => ({
    resourceType: 'Task',
    status,
    intent: 'order',
    requester: { reference: `Organization/${from}` },
    owner: { reference: `Organization/${to}` },
    meta: { versionId: String(i + 1), lastUpdated: new Date(t0 + minutes * 60_000).toISOString() },
  }));
  const request: ServiceRequest = { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: {}, category: [{ coding: [WORKFLOW_CATEGORY.referral, DIRECTION[direction]] }], supportingInfo: Array.from({ length: records }, (_, i) => ({ reference: `DocumentReference/d${i}` })) };
  return { versions, request };
}

describe('workflow figures', () => {
  const november = monthPeriod('2026-11');

  it('a month is China time', () => {
    expect(november).toEqual({ start: '2026-10-31T16:00:00.000Z', end: '2026-11-30T16:00:00.000Z' });
  });

  it('counts each facility\'s referrals both ways, its acceptance and completion, and down-referrals that carried records', () => {
    const f = workflowFigures(
      [
        referral('up', C, H, '2026-11-02T01:00:00Z', [['accepted', 30], ['in-progress', 60], ['completed', 600]]),
        referral('up', C, H, '2026-11-03T01:00:00Z', [['accepted', 90]]),
        referral('up', C, H, '2026-11-04T01:00:00Z', [['rejected', 10]]),
        referral('down', H, C, '2026-11-05T01:00:00Z', [['accepted', 120], ['in-progress', 130], ['completed', 2000]], 2),
        referral('down', H, C, '2026-11-06T01:00:00Z', [], 0),
        // requested before the month (China time): another period's
        referral('up', C, H, '2026-10-31T15:59:00Z', [['accepted', 5]]),
      ],
      november,
    );
    const [hospital, centre] = f.facilities;
    expect(hospital).toMatchObject({ facility: H, sent: { up: 0, down: 2 }, received: { up: 3, down: 0 }, accepted: 2, rejected: 1, completed: 1, downWithRecords: 1 });
    expect([hospital.acceptanceRate, hospital.completionRate, hospital.medianMinutesToAccept]).toEqual([0.667, 0.333, 90]);
    expect(centre).toMatchObject({ facility: C, sent: { up: 3, down: 0 }, received: { up: 0, down: 2 }, accepted: 1, completed: 1, acceptanceRate: 0.5 });
  });
});
