/**
 * The patient index's tables (migration 3): links, blocking keys, golden ids, the review queue
 * and merges. Every function takes the executor of the caller's transaction, so a link change
 * commits or rolls back with the write that caused it.
 */
import type { SqlExecutor } from '../store/db/database';
import type { Levels } from './compare';
import type { Member } from './golden';
import type { PersonFeatures } from './features';

export type LinkSource = 'AUTO' | 'MANUAL';

export interface GoldenRow {
  id: string;
  mergedInto: string | null;
}

export interface Link {
  patientId: string;
  goldenId: string;
  linkSource: LinkSource;
  score: number | null;
  rule: string;
  rulesVersion: string;
  features: PersonFeatures;
  updatedAt?: string;
}

interface LinkRowDb {
  patient_id: string;
  golden_id: string;
  link_source: LinkSource;
  score: number | null;
  rule: string;
  rules_version: string;
  features: PersonFeatures | string;
  updated_at: string | Date;
}

const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);
const iso = (v: string | Date): string => (v instanceof Date ? v.toISOString() : new Date(v).toISOString());

function toLink(r: LinkRowDb): Link {
  return { patientId: r.patient_id, goldenId: r.golden_id, linkSource: r.link_source, score: r.score === null ? null : Number(r.score), rule: r.rule, rulesVersion: r.rules_version, features: json(r.features), updatedAt: iso(r.updated_at) };
}

export interface Review {
  patientId: string;
  goldenId: string;
  state: 'open' | 'accepted' | 'rejected';
  score: number | null;
  levels: Levels | null;
  createdAt: string;
  decidedAt?: string;
  decidedBy?: string;
}

export const links = {
  /**
   * Serialises every transaction that could decide about the same person: the keys are the
   * blocking keys a registration is looked up by, so two registrations of one new person
   * arriving at once wait for each other instead of each creating a golden record. Taken in
   * sorted order, so two transactions cannot each hold what the other waits for.
   */
  async lock(ex: SqlExecutor, keys: string[]): Promise<void> {
    const sorted = [...new Set(keys)].sort();
    await ex.query(`SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) s`, [sorted.map((k) => `mpi:${k}`)]);
  },

  async get(ex: SqlExecutor, patientId: string): Promise<Link | undefined> {
    return (await links.getMany(ex, [patientId])).get(patientId);
  },

  /** The links of those of `patientIds` that have one, by patient id. */
  async getMany(ex: SqlExecutor, patientIds: string[]): Promise<Map<string, Link>> {
    const rows = await ex.query<LinkRowDb>('SELECT * FROM mpi_link WHERE patient_id = ANY($1::text[])', [patientIds]);
    return new Map(rows.map((r) => [r.patient_id, toLink(r)]));
  },

  async isGolden(ex: SqlExecutor, id: string): Promise<boolean> {
    return (await links.goldenIds(ex, [id])).has(id);
  },

  /** Those of `ids` that are golden ids. */
  async goldenIds(ex: SqlExecutor, ids: string[]): Promise<Set<string>> {
    const rows = await ex.query<{ id: string }>('SELECT id FROM mpi_golden WHERE id = ANY($1::text[])', [ids]);
    return new Set(rows.map((r) => r.id));
  },

  /** The registrations filed under any of `keys`, at most `perKey` per key (a huge block is a bad key, not a lead). */
  async candidates(ex: SqlExecutor, keys: string[], perKey: number): Promise<Link[]> {
    if (keys.length === 0) return [];
    const rows = await ex.query<LinkRowDb>(
      `SELECT l.* FROM (SELECT DISTINCT b.patient_id FROM unnest($1::text[]) AS k(key)
         CROSS JOIN LATERAL (SELECT patient_id FROM mpi_block WHERE key = k.key LIMIT $2) b) c
       JOIN mpi_link l ON l.patient_id = c.patient_id`,
      [keys, perKey],
    );
    return rows.map(toLink);
  },

  /** Saves a link with its blocking keys, and appends it to the link history; `newGolden`: its golden id is created with it. */
  async save(ex: SqlExecutor, link: Link, blocks: string[], decidedBy: string, newGolden = false): Promise<void> {
    await ex.query(
      `WITH golden AS (INSERT INTO mpi_golden (id) SELECT $2 WHERE $10),
       del AS (DELETE FROM mpi_block WHERE patient_id = $1 AND NOT (key = ANY($8::text[]))),
       ins AS (INSERT INTO mpi_block (key, patient_id) SELECT k, $1 FROM unnest($8::text[]) AS k ON CONFLICT DO NOTHING),
       hist AS (INSERT INTO mpi_link_history (patient_id, golden_id, link_source, score, rule, decided_by) VALUES ($1, $2, $3, $4, $5, $9))
       INSERT INTO mpi_link (patient_id, golden_id, link_source, score, rule, rules_version, features)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
       ON CONFLICT (patient_id) DO UPDATE SET golden_id = EXCLUDED.golden_id, link_source = EXCLUDED.link_source, score = EXCLUDED.score,
         rule = EXCLUDED.rule, rules_version = EXCLUDED.rules_version, features = EXCLUDED.features, updated_at = now()`,
      [link.patientId, link.goldenId, link.linkSource, link.score, link.rule, link.rulesVersion, JSON.stringify(link.features), blocks, decidedBy, newGolden],
    );
  },

  /**
   * Loads links already decided elsewhere (an existing index brought by a joining facility, a
   * benchmark's population) in one statement per batch: golden ids, links and blocking keys.
   * Nothing is matched; the golden Patient resources are not written.
   */
  async loadDecided(ex: SqlExecutor, rows: { link: Link; blocks: string[] }[], decidedBy: string): Promise<void> {
    const doc = JSON.stringify(rows.map((r) => ({ p: r.link.patientId, g: r.link.goldenId, s: r.link.linkSource, sc: r.link.score, r: r.link.rule, v: r.link.rulesVersion, f: r.link.features, b: r.blocks })));
    await ex.query(
      `WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(p text, g text, s text, sc real, r text, v text, f jsonb, b text[])),
       g AS (INSERT INTO mpi_golden (id) SELECT DISTINCT g FROM x ON CONFLICT DO NOTHING),
       bl AS (INSERT INTO mpi_block (key, patient_id) SELECT k, x.p FROM x, unnest(x.b) AS k ON CONFLICT DO NOTHING),
       h AS (INSERT INTO mpi_link_history (patient_id, golden_id, link_source, score, rule, decided_by) SELECT p, g, s, sc, r, $2 FROM x)
       INSERT INTO mpi_link (patient_id, golden_id, link_source, score, rule, rules_version, features) SELECT p, g, s, sc, r, v, f FROM x`,
      [doc, decidedBy],
    );
  },

  async remove(ex: SqlExecutor, patientId: string, decidedBy: string): Promise<void> {
    await ex.query(
      `WITH b AS (DELETE FROM mpi_block WHERE patient_id = $1),
       c AS (DELETE FROM mpi_candidate WHERE patient_id = $1),
       h AS (INSERT INTO mpi_link_history (patient_id, golden_id, rule, decided_by) VALUES ($1, NULL, 'deleted', $2))
       DELETE FROM mpi_link WHERE patient_id = $1`,
      [patientId, decidedBy],
    );
  },

  async members(ex: SqlExecutor, goldenId: string): Promise<Member[]> {
    return (await links.membersOf(ex, [goldenId])).get(goldenId) ?? [];
  },

  /** The registrations linked to each of `goldenIds` (those with any), in patient id order. */
  async membersOf(ex: SqlExecutor, goldenIds: string[]): Promise<Map<string, Member[]>> {
    const rows = await ex.query<{ golden_id: string; patient_id: string; features: PersonFeatures | string }>(
      'SELECT golden_id, patient_id, features FROM mpi_link WHERE golden_id = ANY($1::text[]) ORDER BY golden_id, patient_id',
      [goldenIds],
    );
    const out = new Map<string, Member[]>();
    for (const r of rows) out.set(r.golden_id, [...(out.get(r.golden_id) ?? []), { patientId: r.patient_id, features: json(r.features) }]);
    return out;
  },

  async linksOf(ex: SqlExecutor, goldenId: string): Promise<Link[]> {
    const rows = await ex.query<LinkRowDb>('SELECT * FROM mpi_link WHERE golden_id = $1 ORDER BY patient_id', [goldenId]);
    return rows.map(toLink);
  },

  /** Drops a golden id nobody is linked to, with the review entries that pointed at it. */
  async dropGolden(ex: SqlExecutor, id: string): Promise<void> {
    await ex.query(`WITH c AS (DELETE FROM mpi_candidate WHERE golden_id = $1 AND state = 'open') DELETE FROM mpi_golden WHERE id = $1`, [id]);
  },

  async goldenRow(ex: SqlExecutor, id: string): Promise<GoldenRow | undefined> {
    return (await links.goldenRows(ex, [id])).get(id);
  },

  async goldenRows(ex: SqlExecutor, ids: string[]): Promise<Map<string, GoldenRow>> {
    const rows = await ex.query<{ id: string; merged_into: string | null }>('SELECT id, merged_into FROM mpi_golden WHERE id = ANY($1::text[])', [ids]);
    return new Map(rows.map((r) => [r.id, { id: r.id, mergedInto: r.merged_into }]));
  },

  async setMergedInto(ex: SqlExecutor, id: string, target: string | null): Promise<void> {
    await ex.query('UPDATE mpi_golden SET merged_into = $2 WHERE id = $1', [id, target]);
  },

  /** For each of `patientIds`, the golden records a person decided it is not (patients with none are absent). */
  async rejected(ex: SqlExecutor, patientIds: string[]): Promise<Map<string, Set<string>>> {
    const rows = await ex.query<{ patient_id: string; golden_id: string }>(`SELECT patient_id, golden_id FROM mpi_candidate WHERE patient_id = ANY($1::text[]) AND state = 'rejected'`, [patientIds]);
    const out = new Map<string, Set<string>>();
    for (const r of rows) out.set(r.patient_id, (out.get(r.patient_id) ?? new Set()).add(r.golden_id));
    return out;
  },

  /** Replaces the registration's open review entries with `open` (decided ones stay as they are). */
  async setOpenReviews(ex: SqlExecutor, patientId: string, open: { goldenId: string; score: number; levels: Levels }[]): Promise<void> {
    await ex.query(
      `WITH d AS (DELETE FROM mpi_candidate WHERE patient_id = $1 AND state = 'open' AND NOT (golden_id = ANY($2::text[])))
       INSERT INTO mpi_candidate (patient_id, golden_id, state, score, levels)
       SELECT $1, g, 'open', s, l::jsonb FROM unnest($2::text[], $3::real[], $4::text[]) AS x(g, s, l)
       ON CONFLICT (patient_id, golden_id) DO UPDATE SET score = EXCLUDED.score, levels = EXCLUDED.levels WHERE mpi_candidate.state = 'open'`,
      [patientId, open.map((o) => o.goldenId), open.map((o) => o.score), open.map((o) => JSON.stringify(o.levels))],
    );
  },

  async decide(ex: SqlExecutor, patientId: string, goldenId: string, state: 'accepted' | 'rejected', by: string): Promise<void> {
    await ex.query(
      `INSERT INTO mpi_candidate (patient_id, golden_id, state, decided_at, decided_by) VALUES ($1, $2, $3, now(), $4)
       ON CONFLICT (patient_id, golden_id) DO UPDATE SET state = EXCLUDED.state, decided_at = now(), decided_by = EXCLUDED.decided_by`,
      [patientId, goldenId, state, by],
    );
  },

  async review(ex: SqlExecutor, patientId: string, goldenId: string): Promise<Review | undefined> {
    const rows = await ex.query<ReviewRowDb>('SELECT * FROM mpi_candidate WHERE patient_id = $1 AND golden_id = $2', [patientId, goldenId]);
    return rows[0] && toReview(rows[0]);
  },

  async reviews(ex: SqlExecutor, state: Review['state'], count: number): Promise<Review[]> {
    const rows = await ex.query<ReviewRowDb>('SELECT * FROM mpi_candidate WHERE state = $1 ORDER BY created_at, patient_id, golden_id LIMIT $2', [state, count]);
    return rows.map(toReview);
  },
};

interface ReviewRowDb {
  patient_id: string;
  golden_id: string;
  state: Review['state'];
  score: number | null;
  levels: Levels | string | null;
  created_at: string | Date;
  decided_at: string | Date | null;
  decided_by: string | null;
}

function toReview(r: ReviewRowDb): Review {
  return {
    patientId: r.patient_id,
    goldenId: r.golden_id,
    state: r.state,
    score: r.score === null ? null : Number(r.score),
    levels: r.levels === null ? null : json(r.levels),
    createdAt: iso(r.created_at),
    ...(r.decided_at && { decidedAt: iso(r.decided_at) }),
    ...(r.decided_by && { decidedBy: r.decided_by }),
  };
}
