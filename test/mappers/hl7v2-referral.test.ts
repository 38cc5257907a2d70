/** REF^I12 / REF^I14 to the consortium's referral pair (profiles/referral.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Condition, Observation, ServiceRequest, Task } from '@medplum/fhirtypes';
import { decodeEr7, mapHl7v2 } from '../../mappers/hl7v2';
import { resourceId } from '../../mappers/ids';
import type { MapResult } from '../../mappers/types';
import { DIRECTION, SNOMED_REFERRAL, TASK_CODE, WORKFLOW_CATEGORY, directionOf, workflowKindOf } from '../../profiles/referral';
import { loadSources } from '../../workers/sources';
import { thrown } from '../support/thrown';

const FIXTURES = join(__dirname, '../../fixtures');
const ctx = loadSources(join(FIXTURES, 'demo-sources.json')).get('city-hospital')!;
const text = (name: string): string => decodeEr7(readFileSync(join(FIXTURES, 'messages/city-hospital', name))).text;
const I12 = text('ref-i12-wang-xiaoming-down.hl7');
const map = (t: string): MapResult => mapHl7v2(t, ctx);
const resources = <T>(r: MapResult, type: string): T[] => r.bundle.entry!.filter((e) => e.resource!.resourceType === type).map((e) => e.resource as T);
const id = (kind: string, local: string): string => resourceId('city-hospital', kind, local);
const replaceLine = (t: string, prefix: string, line: string): string => t.split('\r').map((l) => (l.startsWith(prefix) ? line : l)).join('\r');

describe('REF^I12', () => {
  it('maps the down-referral to a ServiceRequest and a requested Task for the community centre', () => {
    const r = map(I12);
    const [sr] = resources<ServiceRequest>(r, 'ServiceRequest');
    const [task] = resources<Task>(r, 'Task');
    const [condition] = resources<Condition>(r, 'Condition');
    const [obs] = resources<Observation>(r, 'Observation');
    expect(sr.id).toBe(id('referral', 'ZZ202511100001'));
    expect(workflowKindOf(sr.category)).toBe('referral');
    expect(directionOf(sr.category)).toBe('down');
    expect(sr.category).toEqual([{ coding: [SNOMED_REFERRAL, WORKFLOW_CATEGORY.referral] }, { coding: [DIRECTION.down] }]);
    expect(sr).toMatchObject({
      status: 'active',
      intent: 'order',
      priority: 'routine',
      subject: { reference: `Patient/${id('patient', '10000101')}` },
      authoredOn: '2025-11-10T09:25:00+08:00',
      requester: { reference: 'Organization/city-hospital' },
      performer: [{ reference: 'Organization/community-centre-a' }],
    });
    expect(sr.code?.coding).toEqual([SNOMED_REFERRAL]);
    expect(sr.reasonCode![0].coding).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'I10' })]));
    expect(sr.supportingInfo).toEqual([{ reference: `Condition/${condition.id}` }, { reference: `Observation/${obs.id}` }]);
    expect(obs.valueQuantity).toMatchObject({ value: 6.0 });

    expect(task).toMatchObject({
      status: 'requested',
      intent: 'order',
      priority: 'routine',
      code: { coding: [TASK_CODE] },
      focus: { reference: `ServiceRequest/${sr.id}` },
      basedOn: [{ reference: `ServiceRequest/${sr.id}` }],
      for: { reference: sr.subject.reference },
      requester: { reference: 'Organization/city-hospital' },
      owner: { reference: 'Organization/community-centre-a' },
      authoredOn: sr.authoredOn,
    });
    // The Task's status is the receiver's to move: a resend must not reset it; the Patient is a copy.
    expect(r.createOnly).toEqual(expect.arrayContaining([`urn:uuid:${task.id}`, `urn:uuid:${id('patient', '10000101')}`]));
    expect(r.createOnly).not.toContain(`urn:uuid:${sr.id}`);
  });

  it('reads the direction from RF1-3 and the receiver from an HL7 namespace in PRD-4.4 as well', () => {
    const up = replaceLine(replaceLine(I12, 'RF1|', 'RF1|P|S|上转||O|ZZ1|20251110'), 'PRD|RT', 'PRD|RT|||^^^CITYHOSP');
    const centreCtx = { ...ctx, source: { ...ctx.source, facility: 'community-centre-a', sendingFacility: undefined } };
    const r = mapHl7v2(up.split('\r').filter((l) => !l.startsWith('PRD|RP')).join('\r'), centreCtx);
    const [sr] = resources<ServiceRequest>(r, 'ServiceRequest');
    expect([directionOf(sr.category), sr.priority, sr.performer, sr.authoredOn]).toEqual(['up', 'stat', [{ reference: 'Organization/city-hospital' }], '2025-11-10']);
  });

  it('names the field of a bad form', () => {
    const cases: [string, string, string][] = [
      [replaceLine(I12, 'PRD|RT', 'PRD|RT||||||CITYHOSP'), 'PRD[2]-7', 'value'],
      [replaceLine(I12, 'PRD|RP', 'PRD|RP||||||county-hospital'), 'PRD-7', 'value'],
      [I12.split('\r').filter((l) => !l.startsWith('PRD|RT')).join('\r'), 'PRD-1', 'required'],
      [replaceLine(I12, 'RF1|', 'RF1|P|R|||O|ZZ1|20251110'), 'RF1-3', 'required'],
      [replaceLine(I12, 'RF1|', 'RF1|P|R|SIDEWAYS||O|ZZ1|20251110'), 'RF1-3', 'code-invalid'],
      [replaceLine(I12, 'RF1|', 'RF1|P|X|DOWN||O|ZZ1|20251110'), 'RF1-2', 'code-invalid'],
      [I12.split('\r').filter((l) => !l.startsWith('RF1|')).join('\r'), 'RF1', 'required'],
    ];
    for (const [t, where, code] of cases) {
      const e = thrown(() => map(t));
      expect([where, e.where, e.code]).toEqual([where, where, code]);
    }
  });
});

describe('REF^I14', () => {
  it('cancels the same referral: the same ids, ServiceRequest revoked, Task cancelled and written', () => {
    const sent = map(I12);
    const cancel = map(text('ref-i14-wang-xiaoming-cancel.hl7'));
    const [sr] = resources<ServiceRequest>(cancel, 'ServiceRequest');
    const [task] = resources<Task>(cancel, 'Task');
    expect(sr.id).toBe(resources<ServiceRequest>(sent, 'ServiceRequest')[0].id);
    expect(task.id).toBe(resources<Task>(sent, 'Task')[0].id);
    expect([sr.status, task.status]).toEqual(['revoked', 'cancelled']);
    expect(cancel.createOnly).not.toContain(`urn:uuid:${task.id}`);
  });
});
