import { exactIdCluster, linkageQuality } from '../../fixtures/synthetic/linkage-quality';
import { registrationId, registrationPatient } from '../../fixtures/synthetic/person-patients';
import { generatePopulation, truePairCount } from '../../fixtures/synthetic/persons';
import { indexProblems, openIndexedStore } from '../support/mpi';

// The acceptance figures of the patient index, on a population small enough for every run;
// bench/mpi gives the same figures on 20,000 persons.
describe('linkage quality on a synthetic population (PGlite)', () => {
  it('auto-links with precision >= 0.995 and recall >= 0.98, far above exact-ID linkage, and never joins a hard pair', async () => {
    const pop = generatePopulation({ persons: 500, seed: 11 });
    const store = await openIndexedStore('pglite');
    try {
      for (const r of pop.registrations) await store.repo.update(registrationPatient(r));
      const rows = await store.db.query<{ patient_id: string; golden_id: string }>('SELECT patient_id, golden_id FROM mpi_link');
      const golden = new Map(rows.map((r) => [r.patient_id, r.golden_id]));
      expect(golden.size).toBe(pop.registrations.length);
      const truePairs = truePairCount(pop);
      const index = linkageQuality(pop.registrations, (r) => golden.get(registrationId(r))!, truePairs);
      const byId = linkageQuality(pop.registrations, exactIdCluster, truePairs);
      expect(index.precision).toBeGreaterThanOrEqual(0.995);
      expect(index.recall).toBeGreaterThanOrEqual(0.98);
      expect(index.recall).toBeGreaterThan(byId.recall + 0.3);
      for (const pair of pop.hardPairs) {
        const goldens = (personId: string) => pop.registrations.filter((r) => r.personId === personId).map((r) => golden.get(registrationId(r)));
        const [a, b] = [goldens(pair.personIds[0]), goldens(pair.personIds[1])];
        expect([pair.kind, a.some((g) => b.includes(g))]).toEqual([pair.kind, false]);
      }
      expect(await indexProblems(store.db)).toEqual([]);
    } finally {
      await store.close();
    }
  }, 120_000);
});
