/**
 * bench/access: what the store's read filter (store/access-filter.ts) costs. Loads a synthetic
 * consortium into PostgreSQL (patient index attached), then times the same searches through the repository unbound,
 * bound to a facility with no opt-out in the store, and again once a share of the patients
 * opted out; prints the plan of one search under the filter.
 *
 *   npm run bench:access -- [--resources 20000] [--patients 400] [--samples 300] [--opt-out 0.05]
 *                           [--database-url postgres://...]
 */
import { parseArgs } from 'node:util';
import { DEMO_FACILITIES, generateConsortium, type GeneratorOptions } from '../fixtures/synthetic/consortium';
import { visibleSql } from '../store/access-filter';
import { PatientIndex } from '../mpi';
import { loadRules } from '../mpi/rules';
import { processBundle } from '../store/bundle';
import { openStore } from '../store/open';
import type { Repository } from '../store/repository';
import { Params, rowsOf } from '../store/search/sql';
import { getParam } from '../store/search-params';
import { percentile } from './support';
import { adminQuery } from '../test/support/stores';

const { values: args } = parseArgs({
  options: {
    resources: { type: 'string', default: '20000' },
    patients: { type: 'string', default: '400' },
    samples: { type: 'string', default: '300' },
    'opt-out': { type: 'string', default: '0.05' },
    'database-url': { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

const gen: GeneratorOptions = { seed: 11, resources: Number(args.resources), patients: Number(args.patients), bundleSize: 100 };

const admin = (sql: string): Promise<void> => adminQuery(sql, args['database-url']);

const pct = (base: number, x: number): string => `${(((x - base) / base) * 100).toFixed(1)}%`;

type Search = [string, [string, string][]];

interface Timing {
  p50: number;
  p95: number;
  entries: number;
}

/** The same searches through each repository in turn, sample by sample, so both see the same load and cache. */
async function time(repos: Repository[], searches: Search[], samples: number): Promise<Timing[]> {
  const times: number[][] = repos.map(() => []);
  const entries = repos.map(() => 0);
  for (let i = 0; i < samples + 30; i++) {
    const [type, params] = searches[i % searches.length];
    for (const [k, repo] of repos.entries()) {
      const t = performance.now();
      const result = await repo.search(type, params);
      if (i < 30) continue;
      times[k].push(performance.now() - t);
      entries[k] += result.matches.length + result.included.length;
    }
  }
  return times.map((ts, k) => {
    ts.sort((a, b) => a - b);
    return { p50: percentile(ts, 50), p95: percentile(ts, 95), entries: entries[k] / samples };
  });
}

async function main(): Promise<void> {
  const dbName = `bench_access_${Date.now()}`;
  await admin(`CREATE DATABASE ${dbName}`);
  const url = new URL(args['database-url']);
  url.pathname = `/${dbName}`;
  const store = await openStore({ databaseUrl: url.toString(), maxConnections: 4 });
  // Linked through the patient index, so that an opt-out widens to each person's registrations.
  new PatientIndex(loadRules()).attach(store.repo);
  try {
    for (const bundle of generateConsortium(gen)) await processBundle(store.repo, bundle);
    // The generator sets no meta; label each record with the facility its id begins with.
    await store.db.query(`UPDATE resource r SET author = f.id FROM unnest($1::text[]) AS f(id) WHERE r.id LIKE f.id || '-%'`, [DEMO_FACILITIES.map((f) => f.id)]);
    await store.db.query('ANALYZE');
    const patients = (await store.db.query<{ id: string }>(`SELECT id FROM resource WHERE type = 'Patient' AND author IS NOT NULL ORDER BY id`)).map((r) => r.id);
    const facility = (await store.db.query<{ author: string }>(`SELECT author FROM resource WHERE author IS NOT NULL GROUP BY author ORDER BY count(*) DESC LIMIT 1`))[0].author;
    const searches: Search[] = patients.flatMap((p): Search[] => [
      ['Observation', [['patient', p], ['code', 'http://loinc.org|718-7']]],
      ['Encounter', [['patient', p], ['_revinclude', 'Condition:encounter'], ['_total', 'accurate']]],
      ['DiagnosticReport', [['patient', p], ['_include', 'DiagnosticReport:result']]],
    ]);
    const samples = Number(args.samples);
    const bound = store.repo.withAccess({ facility });
    console.log(`bench/access: ${gen.resources} resources, ${patients.length} patients, ${samples} searches each, reader ${facility}`);
    console.log('                                        p50 ms   p95 ms   entries(avg)');
    const print = (name: string, r: Timing): void => console.log(`${name.padEnd(38)} ${r.p50.toFixed(2).padStart(7)}  ${r.p95.toFixed(2).padStart(7)}   ${r.entries.toFixed(1)}`);
    const compare = async (label: string): Promise<void> => {
      const [unbound, filtered] = await time([store.repo, bound], searches, samples);
      print('unbound', unbound);
      print(`facility, ${label}`, filtered);
      console.log(`${'rise'.padEnd(38)} ${pct(unbound.p50, filtered.p50).padStart(7)}  ${pct(unbound.p95, filtered.p95).padStart(7)}`);
    };
    await compare('no opt-outs');
    const optedOut = patients.filter((_, i) => i % Math.round(1 / Number(args['opt-out'])) === 0);
    await store.db.query(`INSERT INTO access_optout (consent_id, patient_id) SELECT 'bench-' || p, p FROM unnest($1::text[]) AS p`, [optedOut]);
    await store.db.query('ANALYZE access_optout');
    await compare(`${optedOut.length} opted out`);

    const other = patients.find((p) => !p.startsWith(`${facility}-`))!;
    const ps = new Params();
    const plan = await store.db.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT r.id FROM resource r WHERE r.type = 'Observation' AND NOT r.deleted
         AND EXISTS (SELECT 1 FROM idx_ref x WHERE x.rk = r.rk AND ${rowsOf(getParam('Observation', 'patient')!, 'x', ps)} AND x.tid = ${ps.add(other)})
         AND ${visibleSql('r', ps, { facility })}`,
      ps.values,
    );
    console.log(`\nplan of Observation?patient=${other} for ${facility}, with the opt-outs:`);
    for (const row of plan) console.log(`  ${row['QUERY PLAN']}`);
  } finally {
    await store.close();
    await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
