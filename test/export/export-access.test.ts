/**
 * The access rules of issue 5 on bulk export, with real tokens on both drivers: an export
 * reads through the store bound to its client, so what a facility may not search it may not
 * export either. X (registered at A) opted out through a Consent at A; Y's HIV result at A is
 * labelled sensitive; B authored none of it. All synthetic.
 */
import type request from 'supertest';
import type { Group, Observation, Resource } from '@medplum/fhirtypes';
import { agentFor, OFFICE } from '../support/auth';
import { exportIds, FHIR, openExportHarness, type ExportHarness } from '../support/export';
import { labObservation } from '../support/fixtures';
import { facilityPatient, mrnSystem, optOutConsent } from '../support/people';
import { DRIVERS } from '../support/stores';

const A = 'city-hospital';
const B = 'county-hospital';
const HIV = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIV' };

describe.each(DRIVERS)('bulk $export and the access rules on %s', (driver) => {
  let h: ExportHarness;
  const agents: Record<string, request.Agent> = {};
  const put = async (who: string, r: Resource & { id: string }): Promise<void> => {
    const res = await agents[who].put(`/fhir/${r.resourceType}/${r.id}`).set('Content-Type', FHIR).send(r);
    expect([r.id, res.status, res.body.issue]).toEqual([r.id, expect.any(Number), undefined]);
  };

  beforeAll(async () => {
    h = await openExportHarness(driver, { access: { mrnSystems: { [mrnSystem(A)]: A, [mrnSystem(B)]: B } } });
    for (const f of [A, B, OFFICE]) agents[f] = await agentFor(h.app, f);
    await put(A, facilityPatient('xa', { name: '冯志强', gender: 'male', birthDate: '1955-06-21' }, A));
    await put(A, labObservation('xa-obs', 'xa', '2345-7', 6.4, 'mmol/L', '2026-06-01'));
    await put(A, optOutConsent('xa-optout', 'xa'));
    await put(A, facilityPatient('ya', { name: '蒋丽华', gender: 'female', birthDate: '1983-10-09' }, A));
    await put(A, labObservation('ya-obs', 'ya', '2345-7', 5.2, 'mmol/L', '2026-06-02'));
    await put(A, labObservation('ya-hiv', 'ya', '7917-8', 0, '{index}', '2026-06-02', { meta: { security: [HIV] } } as Partial<Observation>));
    await put(B, facilityPatient('zb', { name: '韩永胜', gender: 'male', birthDate: '1969-01-15' }, B));
    await put(B, labObservation('zb-obs', 'zb', '718-7', 140, 'g/L', '2026-06-03'));
    const ward = (id: string): Group & { id: string } => ({ resourceType: 'Group', id, type: 'person', actual: true, member: ['xa', 'ya', 'zb'].map((p) => ({ entity: { reference: `Patient/${p}` } })) });
    await put(A, ward('ward-a'));
    await put(B, ward('ward-b'));
  });
  afterAll(() => h.close());

  it('system export: B gets neither the opted-out person nor the sensitive result; A, their author, gets both', async () => {
    const path = '/fhir/$export?_type=Patient,Observation,Consent';
    const b = await exportIds(agents[B], path);
    expect(b.Observation).toEqual(['ya-obs', 'zb-obs']);
    expect(b.Patient).toEqual(expect.arrayContaining(['ya', 'zb']));
    expect(b.Patient).not.toContain('xa');
    expect(b.Consent).toBeUndefined();
    const a = await exportIds(agents[A], path);
    expect(a.Observation).toEqual(['xa-obs', 'ya-hiv', 'ya-obs', 'zb-obs']);
    expect(a.Patient).toEqual(expect.arrayContaining(['xa', 'ya', 'zb']));
    expect(a.Consent).toEqual(['xa-optout']);
  });

  it('Patient and Group export leave out the same records for B', async () => {
    const paths = (g: string): string[] => ['/fhir/Patient/$export?_type=Patient,Observation', `/fhir/Group/${g}/$export?_type=Patient,Observation`];
    for (const path of paths('ward-b')) {
      const b = await exportIds(agents[B], path);
      expect([path, b.Observation]).toEqual([path, ['ya-obs', 'zb-obs']]);
      expect(b.Patient).not.toContain('xa');
    }
    for (const path of paths('ward-a')) {
      const a = await exportIds(agents[A], path);
      expect([path, a.Observation]).toEqual([path, ['xa-obs', 'ya-hiv', 'ya-obs', 'zb-obs']]);
    }
    // Each ward names X, so it is about an opted-out person: only its author may see, or export, it.
    await agents[A].get('/fhir/Group/ward-b/$export').set('Prefer', 'respond-async').expect(404);
    await agents[B].get('/fhir/Group/ward-a/$export').set('Prefer', 'respond-async').expect(404);
  });

  it('the office exports everything, AuditEvents too', async () => {
    const office = await exportIds(agents[OFFICE], '/fhir/$export?_type=Observation,AuditEvent');
    expect(office.Observation).toEqual(['xa-obs', 'ya-hiv', 'ya-obs', 'zb-obs']);
    await agents[B].get('/fhir/$export?_type=AuditEvent').set('Prefer', 'respond-async').expect(403);
  });
});
