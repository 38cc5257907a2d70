/**
 * bench/mpi: how well and how fast the patient index links.
 *
 * 1. Quality: every registration of a seeded synthetic population (fixtures/synthetic/persons.ts)
 *    is written as a facility Patient through the store, so the real index links it; then
 *    pairwise precision, recall and F1 of the automatic links, beside a baseline that links
 *    only by exact (valid) ID number, computed from the truth.
 * 2. Speed: an index of --index persons (default 1,000,000) is bulk-loaded, then --samples
 *    other registrations of indexed persons are matched against it: p50/p95 of one match
 *    (blocking query + scoring), and the time the index took to build.
 *
 *   npm run bench:mpi -- [--persons 20000] [--seed 1] [--index 1000000] [--samples 1000]
 *                        [--database-url postgres://...]
 */
import { parseArgs } from 'node:util';
import { PatientIndex } from '../mpi';
import { loadRules } from '../mpi/rules';
import { createValidator } from '../profiles/validator';
import { openStore, type OpenStore } from '../store/open';
import { generatePopulation, truePairCount, type SyntheticRegistration } from '../fixtures/synthetic/persons';
import { registrationId, registrationPatient } from '../fixtures/synthetic/person-patients';
import { exactIdCluster, linkageQuality, type LinkageQuality } from '../fixtures/synthetic/linkage-quality';
import { percentile } from './support';
import { adminQuery } from '../test/support/stores';

const { values: args } = parseArgs({
  options: {
    persons: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '1' },
    index: { type: 'string', default: '1000000' },
    samples: { type: 'string', default: '1000' },
    'database-url': { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

const admin = (sql: string): Promise<void> => adminQuery(sql, args['database-url']);

async function freshStore(name: string): Promise<{ store: OpenStore; drop: () => Promise<void> }> {
  const db = `bench_mpi_${name}_${Date.now()}`;
  await admin(`CREATE DATABASE ${db}`);
  const url = new URL(args['database-url']);
  url.pathname = `/${db}`;
  const store = await openStore({ databaseUrl: url.toString(), maxConnections: 4 }, { validate: createValidator() });
  return {
    store,
    drop: async () => {
      await store.close();
      await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    },
  };
}

const fmt = (q: LinkageQuality): string => `precision ${q.precision.toFixed(4)}  recall ${q.recall.toFixed(4)}  F1 ${q.f1.toFixed(4)}  (linked pairs ${q.linkedPairs}, true pairs ${q.truePairs})`;

async function quality(rules: ReturnType<typeof loadRules>): Promise<void> {
  const persons = Number(args.persons);
  const pop = generatePopulation({ persons, seed: Number(args.seed) });
  const regs = pop.registrations;
  const truePairs = truePairCount(pop);
  console.log(`bench/mpi quality: ${persons} persons, ${regs.length} registrations, ${pop.hardPairs.length} hard non-match pairs, seed ${args.seed}, rules ${rules.version}`);
  const { store, drop } = await freshStore('quality');
  try {
    const mpi = new PatientIndex(rules);
    mpi.attach(store.repo);
    const started = Date.now();
    const times: number[] = [];
    for (let i = 0; i < regs.length; i++) {
      const t = process.hrtime.bigint();
      await store.repo.update(registrationPatient(regs[i]));
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      if ((i + 1) % 10000 === 0) console.log(`  ${i + 1}/${regs.length} registrations written and linked`);
    }
    const seconds = (Date.now() - started) / 1000;
    times.sort((a, b) => a - b);
    console.log(`  write + link: ${(regs.length / seconds).toFixed(0)} registrations/s; per registration p50 ${percentile(times, 50).toFixed(2)} ms, p95 ${percentile(times, 95).toFixed(2)} ms`);
    const rows = await store.db.query<{ patient_id: string; golden_id: string }>('SELECT patient_id, golden_id FROM mpi_link');
    const golden = new Map(rows.map((r) => [r.patient_id, r.golden_id]));
    const index = linkageQuality(regs, (r) => golden.get(registrationId(r))!, truePairs);
    const baseline = linkageQuality(regs, exactIdCluster, truePairs);
    console.log(`  patient index   ${fmt(index)}`);
    console.log(`  exact ID only   ${fmt(baseline)}`);
    console.log(`  recall ratio index/baseline: ${(index.recall / baseline.recall).toFixed(2)}x`);
    const reviews = await store.db.query<{ patient_id: string; golden_id: string }>(`SELECT patient_id, golden_id FROM mpi_candidate WHERE state = 'open'`);
    const personOf = new Map(regs.map((r) => [registrationId(r), r.personId]));
    const goldenPersons = new Map<string, Set<string>>();
    for (const [p, g] of golden) goldenPersons.set(g, (goldenPersons.get(g) ?? new Set()).add(personOf.get(p)!));
    const trueReviews = reviews.filter((r) => goldenPersons.get(r.golden_id)?.has(personOf.get(r.patient_id)!)).length;
    console.log(`  review queue: ${reviews.length} possible matches, ${trueReviews} of them truly the same person`);
    const hard = pop.hardPairs.map((h) => {
      const a = regs.filter((r) => r.personId === h.personIds[0]).map((r) => golden.get(registrationId(r)));
      const b = regs.filter((r) => r.personId === h.personIds[1]).map((r) => golden.get(registrationId(r)));
      return { kind: h.kind, joined: a.some((g) => b.includes(g)) };
    });
    for (const kind of ['twins', 'namesakes', 'father-son'] as const) {
      const of = hard.filter((h) => h.kind === kind);
      console.log(`  hard non-matches ${kind}: ${of.length} pairs, ${of.filter((h) => h.joined).length} wrongly linked`);
    }
  } finally {
    await drop();
  }
}

async function speed(rules: ReturnType<typeof loadRules>): Promise<void> {
  const size = Number(args.index);
  const samples = Number(args.samples);
  console.log(`bench/mpi speed: index of ${size} persons, ${samples} matches`);
  let t = Date.now();
  const pop = generatePopulation({ persons: size, seed: Number(args.seed) + 1 });
  console.log(`  generated ${pop.registrations.length} registrations in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  // Each person's first registration is indexed; a later one of the same person is a query.
  const first = new Map<string, SyntheticRegistration>();
  const queries: SyntheticRegistration[] = [];
  for (const r of pop.registrations) {
    if (!first.has(r.personId)) first.set(r.personId, r);
    else if (queries.length < samples) queries.push(r);
  }
  const { store, drop } = await freshStore('speed');
  try {
    const mpi = new PatientIndex(rules);
    t = Date.now();
    const batch = 5000;
    const indexed = [...first.values()];
    for (let i = 0; i < indexed.length; i += batch) {
      await mpi.loadDecided(store.db, indexed.slice(i, i + batch).map((r) => ({ patient: registrationPatient(r), goldenId: `g-${r.personId}`, rule: 'bench' })), 'bench');
    }
    await store.db.query('ANALYZE mpi_block');
    await store.db.query('ANALYZE mpi_link');
    const buildSeconds = (Date.now() - t) / 1000;
    console.log(`  index built: ${indexed.length} persons in ${buildSeconds.toFixed(1)} s (${(indexed.length / buildSeconds).toFixed(0)} persons/s, links + blocking keys)`);
    const times: number[] = [];
    let found = 0;
    for (let round = 0; round < 2; round++) {
      // The first round warms the caches; the second is measured.
      for (const q of queries) {
        const s = process.hrtime.bigint();
        const result = await mpi.match(store.db, registrationPatient(q));
        if (round === 1) {
          times.push(Number(process.hrtime.bigint() - s) / 1e6);
          if (result[0]?.goldenId === `g-${q.personId}`) found++;
        }
      }
    }
    times.sort((a, b) => a - b);
    console.log(`  match latency over ${times.length} queries: p50 ${percentile(times, 50).toFixed(2)} ms, p95 ${percentile(times, 95).toFixed(2)} ms, max ${times[times.length - 1].toFixed(2)} ms`);
    console.log(`  the best candidate was the right person for ${found}/${times.length} queries`);
  } finally {
    await drop();
  }
}

async function main(): Promise<void> {
  const rules = loadRules();
  await quality(rules);
  if (Number(args.index) > 0) await speed(rules);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
