/** A store with the patient index attached, and the index's invariants as a check. */
import { PatientIndex } from '../../mpi';
import { loadRules } from '../../mpi/rules';
import type { SqlExecutor } from '../../store/db/database';
import type { StoreOptions } from '../../store/repository';
import { openTestStore, type Driver, type TestStore } from './stores';

export async function openIndexedStore(driver: Driver, options: StoreOptions = {}): Promise<TestStore & { mpi: PatientIndex }> {
  const store = await openTestStore(driver, options);
  const mpi = new PatientIndex(loadRules());
  mpi.attach(store.repo);
  return { ...store, mpi };
}

/**
 * What must hold after any sequence of operations: every current facility Patient has exactly
 * one link, to a golden record that exists, is active and lists it; no golden record lists a
 * registration that is not linked to it. Returns the violations (empty when sound).
 */
export async function indexProblems(ex: SqlExecutor): Promise<string[]> {
  const problems: string[] = [];
  const unlinked = await ex.query<{ id: string }>(
    `SELECT r.id FROM resource r WHERE r.type = 'Patient' AND NOT r.deleted AND NOT EXISTS (SELECT 1 FROM mpi_golden g WHERE g.id = r.id)
       AND (SELECT count(*) FROM mpi_link l WHERE l.patient_id = r.id) <> 1`,
  );
  problems.push(...unlinked.map((r) => `Patient/${r.id} is not linked exactly once`));
  const goldens = await ex.query<{ id: string; content: string | null; merged_into: string | null; members: string[] | null }>(
    `SELECT g.id, g.merged_into, r.content::text AS content, (SELECT array_agg(l.patient_id ORDER BY l.patient_id) FROM mpi_link l WHERE l.golden_id = g.id) AS members
     FROM mpi_golden g LEFT JOIN resource r ON r.type = 'Patient' AND r.id = g.id AND NOT r.deleted`,
  );
  for (const g of goldens) {
    if (!g.content) {
      problems.push(`golden ${g.id} has no Patient resource`);
      continue;
    }
    const listed = ((JSON.parse(g.content) as { link?: { other: { reference: string }; type: string }[] }).link ?? []).filter((l) => l.type === 'seealso').map((l) => l.other.reference.slice(8)).sort();
    const members = g.members ?? [];
    if (g.merged_into && members.length > 0) problems.push(`merged golden ${g.id} still has members`);
    if (!g.merged_into && JSON.stringify(listed) !== JSON.stringify(members)) problems.push(`golden ${g.id} lists ${listed.join(',')} but has ${members.join(',')}`);
    if (!g.merged_into && members.length === 0) problems.push(`golden ${g.id} has no members`);
  }
  return problems;
}
