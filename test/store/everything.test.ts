import { DRIVERS, openTestStore, type TestStore } from '../support/stores';
import { labObservation, transaction } from '../support/fixtures';
import { processBundle } from '../../store/bundle';
import type { Repository } from '../../store/repository';

describe.each(DRIVERS)('Patient/$everything on %s', (driver) => {
  let store: TestStore;
  let repo: Repository;
  let midpoint: string;
  beforeAll(async () => {
    store = await openTestStore(driver);
    repo = store.repo;
    await processBundle(
      repo,
      transaction([
        { resourceType: 'Organization', id: 'org-1', name: '社区卫生服务中心' },
        { resourceType: 'Patient', id: 'pe', managingOrganization: { reference: 'Organization/org-1' } },
        { resourceType: 'Patient', id: 'other' },
        { resourceType: 'Encounter', id: 'enc-1', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/pe' }, serviceProvider: { reference: 'Organization/org-1' } },
        { resourceType: 'Condition', id: 'cond-1', subject: { reference: 'Patient/pe' }, code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'I10' }] } },
        ...Array.from({ length: 30 }, (_, i) => labObservation(`ev-o${i}`, 'pe', '718-7', 10 + i / 10, 'g/dL', '2024-01-01')),
        labObservation('other-o', 'other', '718-7', 12, 'g/dL', '2024-01-01'),
      ]),
    );
    await new Promise((r) => setTimeout(r, 20));
    midpoint = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await repo.update({ resourceType: 'MedicationRequest', id: 'mr-1', status: 'active', intent: 'order', subject: { reference: 'Patient/pe' }, medicationCodeableConcept: { text: '氨氯地平' } });
  });
  afterAll(() => store.close());

  it('returns the patient, the compartment and referenced organisations, nobody else', async () => {
    const { entries, next } = await repo.everything(['pe'], { count: 1000 });
    const refs = entries.map((e) => e.reference);
    expect(next).toBeUndefined();
    expect(refs).toContain('Patient/pe');
    expect(refs).toContain('Encounter/enc-1');
    expect(refs).toContain('Condition/cond-1');
    expect(refs).toContain('MedicationRequest/mr-1');
    expect(refs).toContain('Organization/org-1');
    expect(refs.filter((r) => r.startsWith('Observation/'))).toHaveLength(30);
    expect(refs).not.toContain('Patient/other');
    expect(refs).not.toContain('Observation/other-o');
    expect(new Set(refs).size).toBe(refs.length);
  });

  it('filters by _type and _since', async () => {
    const onlyConditions = await repo.everything(['pe'], { count: 1000, types: ['Condition'] });
    expect(onlyConditions.entries.map((e) => e.reference)).toEqual(['Condition/cond-1']);
    const recent = await repo.everything(['pe'], { count: 1000, since: midpoint });
    expect(recent.entries.map((e) => e.reference)).toEqual(['MedicationRequest/mr-1']);
  });

  it('pages with _count and a cursor without losing or repeating anything', async () => {
    const all = (await repo.everything(['pe'], { count: 1000 })).entries.filter((e) => e.resourceType !== 'Organization').map((e) => e.reference);
    const seen: string[] = [];
    let page = await repo.everything(['pe'], { count: 7 });
    let pages = 1;
    seen.push(...page.entries.filter((e) => e.resourceType !== 'Organization').map((e) => e.reference));
    while (page.next) {
      page = await repo.everything(['pe'], { count: 7, cursor: page.next });
      pages++;
      seen.push(...page.entries.filter((e) => e.resourceType !== 'Organization').map((e) => e.reference));
    }
    expect(pages).toBe(Math.ceil(all.length / 7));
    expect(seen.sort()).toEqual([...all].sort());
  });

  it('spans several linked Patient ids (the patient index hands these in)', async () => {
    const both = await repo.everything(['pe', 'other'], { count: 1000 });
    expect(both.entries.map((e) => e.reference)).toEqual(expect.arrayContaining(['Patient/other', 'Observation/other-o', 'Patient/pe']));
  });
});
