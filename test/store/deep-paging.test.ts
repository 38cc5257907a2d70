import type { Resource } from '@medplum/fhirtypes';
import { DRIVERS, openTestStore, type TestStore } from '../support/stores';
import { transaction } from '../support/fixtures';
import { processBundle } from '../../store/bundle';

const ROWS = 10_050;

describe.each(DRIVERS)('paging past 10,000 rows on %s', (driver) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await openTestStore(driver);
    for (let start = 0; start < ROWS; start += 1000) {
      const batch: (Resource & { id: string })[] = [];
      for (let i = start; i < Math.min(start + 1000, ROWS); i++) {
        batch.push({ resourceType: 'Basic', id: `b${i}`, code: { coding: [{ system: 'urn:test', code: i % 2 ? 'odd' : 'even' }] }, created: `2020-01-${String((i % 28) + 1).padStart(2, '0')}` });
      }
      await processBundle(store.repo, transaction(batch));
    }
  }, 300_000);
  afterAll(() => store.close());

  it('visits every row exactly once, forwards and backwards', async () => {
    const { query, ...first } = await store.repo.search('Basic', [['_count', '1000']]);
    const forward: string[] = first.matches.map((m) => m.id);
    const pages = [first];
    let page = first;
    while (page.next) {
      page = await store.repo.runSearch({ ...query, cursor: page.next });
      pages.push(page);
      forward.push(...page.matches.map((m) => m.id));
    }
    expect(pages).toHaveLength(11);
    expect(forward).toHaveLength(ROWS);
    expect(new Set(forward).size).toBe(ROWS);

    const backward: string[] = [];
    page = pages[pages.length - 1];
    backward.unshift(...page.matches.map((m) => m.id));
    while (page.previous) {
      page = await store.repo.runSearch({ ...query, cursor: page.previous });
      backward.unshift(...page.matches.map((m) => m.id));
    }
    expect(backward).toEqual(forward);
  });

  it('filters at depth: only odd codes, 5,025 of them', async () => {
    const { query, ...first } = await store.repo.search('Basic', [['code', 'urn:test|odd'], ['_count', '1000']]);
    let n = first.matches.length;
    let page = first;
    while (page.next) {
      page = await store.repo.runSearch({ ...query, cursor: page.next });
      n += page.matches.length;
    }
    expect(n).toBe(5025);
  });
});
