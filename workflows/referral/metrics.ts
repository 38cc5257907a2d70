/**
 * The consortium office's referral and remote-reading figures for one period (issue 7): per
 * facility, referrals sent and received up and down, acceptance and completion rates, time to
 * accept, down-referrals that carried records, and remote-read turnaround per priority. Pure:
 * computed from each workflow Task's versions (its history is the record of every step) and
 * its ServiceRequest; workflows/referral/metrics-source.ts loads them.
 */
import type { MeasureReport, ServiceRequest, Task } from '@medplum/fhirtypes';
import { directionOf, workflowKindOf, type Direction } from '../../profiles/referral';

export interface WorkflowCase {
  /** The Task's versions, oldest first. */
  versions: Task[];
  request?: ServiceRequest;
}

export interface FacilityFigures {
  facility: string;
  sent: Record<Direction, number>;
  received: Record<Direction, number>;
  /** Of the referrals this facility received: accepted (or further), rejected, completed. */
  accepted: number;
  rejected: number;
  completed: number;
  acceptanceRate: number | null;
  completionRate: number | null;
  /** Median minutes from request to acceptance of what it received. */
  medianMinutesToAccept: number | null;
  /** Down-referrals it sent whose ServiceRequest carried supporting records (a discharge summary, results). */
  downWithRecords: number;
  /** Remote readings it performed. */
  readings: number;
}

export interface Turnaround {
  priority: string;
  completed: number;
  medianMinutes: number | null;
  p90Minutes: number | null;
}

export interface WorkflowFigures {
  period: { start: string; end: string };
  facilities: FacilityFigures[];
  readingTurnaround: Turnaround[];
}

const ACCEPTED_OR_LATER = new Set(['accepted', 'in-progress', 'completed', 'failed']);

const orgId = (ref: string | undefined): string | undefined => ref?.match(/^Organization\/(.+)$/)?.[1];
const instant = (t: Task): number => Date.parse(t.meta?.lastUpdated ?? t.authoredOn ?? '');
const minutesBetween = (from: Task, to: Task): number => (instant(to) - instant(from)) / 60_000;

const COMPLETED = new Set(['completed']);

/** When the case first reached one of `statuses`, as its version. */
function reached(c: WorkflowCase, statuses: Set<string>): Task | undefined {
  return c.versions.find((v) => statuses.has(v.status ?? ''));
}

function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10;
}

const rate = (n: number, of: number): number | null => (of === 0 ? null : Math.round((n / of) * 1000) / 1000);

/** The figures for the cases requested within [start, end). */
export function workflowFigures(cases: WorkflowCase[], period: { start: string; end: string }): WorkflowFigures {
  const [from, to] = [Date.parse(period.start), Date.parse(period.end)];
  const inPeriod = cases.filter((c) => {
    const t = c.versions[0] ? instant(c.versions[0]) : NaN;
    return t >= from && t < to;
  });
  const byFacility = new Map<string, FacilityFigures & { waits: number[] }>();
  const figures = (facility: string) => {
    let f = byFacility.get(facility);
    if (!f) {
      f = { facility, sent: { up: 0, down: 0 }, received: { up: 0, down: 0 }, accepted: 0, rejected: 0, completed: 0, acceptanceRate: null, completionRate: null, medianMinutesToAccept: null, downWithRecords: 0, readings: 0, waits: [] };
      byFacility.set(facility, f);
    }
    return f;
  };
  const turnaround = new Map<string, number[]>();
  for (const c of inPeriod) {
    const first = c.versions[0];
    const last = c.versions[c.versions.length - 1];
    const requester = orgId(first.requester?.reference);
    const owner = orgId(first.owner?.reference);
    if (!requester || !owner) continue;
    const kind = workflowKindOf(c.request?.category);
    if (kind === 'reading') {
      figures(owner).readings++;
      const done = reached(c, COMPLETED);
      if (done) {
        const priority = first.priority ?? c.request?.priority ?? 'routine';
        turnaround.set(priority, [...(turnaround.get(priority) ?? []), minutesBetween(first, done)]);
      }
      continue;
    }
    const direction = directionOf(c.request?.category);
    if (!direction) continue;
    const sender = figures(requester);
    const receiver = figures(owner);
    sender.sent[direction]++;
    receiver.received[direction]++;
    if (direction === 'down' && (c.request?.supportingInfo?.length ?? 0) > 0) sender.downWithRecords++;
    const accepted = reached(c, ACCEPTED_OR_LATER);
    if (accepted) {
      receiver.accepted++;
      receiver.waits.push(minutesBetween(first, accepted));
    }
    if (last.status === 'rejected') receiver.rejected++;
    if (last.status === 'completed') receiver.completed++;
  }
  const facilities = [...byFacility.values()]
    .map(({ waits, ...f }) => {
      const received = f.received.up + f.received.down;
      return { ...f, acceptanceRate: rate(f.accepted, received), completionRate: rate(f.completed, received), medianMinutesToAccept: quantile(waits, 0.5) };
    })
    .sort((a, b) => a.facility.localeCompare(b.facility));
  const readingTurnaround = [...turnaround.entries()]
    .map(([priority, minutes]) => ({ priority, completed: minutes.length, medianMinutes: quantile(minutes, 0.5), p90Minutes: quantile(minutes, 0.9) }))
    .sort((a, b) => a.priority.localeCompare(b.priority));
  return { period, facilities, readingTurnaround };
}

const MEASURE_SYSTEM = 'http://consortium.example/fhir/CodeSystem/workflow-measure';

/** The same figures as a summary MeasureReport, one group per facility and one per reading priority. */
export function asMeasureReport(f: WorkflowFigures, now = new Date().toISOString()): MeasureReport {
  const code = (c: string, text?: string) => ({ coding: [{ system: MEASURE_SYSTEM, code: c }], ...(text ? { text } : {}) });
  const score = (value: number | null, unit?: string) =>
    value === null ? {} : { measureScore: { value, ...(unit ? { unit, system: 'http://unitsofmeasure.org', code: unit } : {}) } };
  const populations = (counts: Record<string, number>) => Object.entries(counts).map(([c, count]) => ({ code: code(c), count }));
  return {
    resourceType: 'MeasureReport',
    status: 'complete',
    type: 'summary',
    measure: 'http://consortium.example/fhir/Measure/referral-flows',
    date: now,
    period: f.period,
    group: [
      // A facility's group scores its acceptance rate of what it received.
      ...f.facilities.map((x) => ({
        code: code('facility', `Organization/${x.facility}`),
        population: populations({
          'sent-up': x.sent.up,
          'sent-down': x.sent.down,
          'received-up': x.received.up,
          'received-down': x.received.down,
          accepted: x.accepted,
          rejected: x.rejected,
          completed: x.completed,
          'down-with-records': x.downWithRecords,
          readings: x.readings,
        }),
        ...score(x.acceptanceRate),
      })),
      // A priority's group scores the median minutes from request to signed report.
      ...f.readingTurnaround.map((t) => ({ code: code('reading-turnaround', t.priority), population: populations({ completed: t.completed }), ...score(t.medianMinutes, 'min') })),
    ],
  };
}
