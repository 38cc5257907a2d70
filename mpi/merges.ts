/** Merges of golden records, kept with what moved so that each can be undone. */
import type { SqlExecutor } from '../store/db/database';
import type { LinkSource } from './links';

export interface MovedLink {
  patientId: string;
  linkSource: LinkSource;
  score: number | null;
  rule: string;
}

export interface Merge {
  id: string;
  sourceGolden: string;
  targetGolden: string;
  moved: MovedLink[];
  reason: string;
  decidedBy: string;
  createdAt: string;
  undoneAt?: string;
}

interface MergeRowDb {
  id: string;
  source_golden: string;
  target_golden: string;
  moved: MovedLink[] | string;
  reason: string;
  decided_by: string;
  created_at: string | Date;
  undone_at: string | Date | null;
}

const iso = (v: string | Date): string => new Date(v).toISOString();

export const merges = {
  async record(ex: SqlExecutor, m: Omit<Merge, 'createdAt' | 'undoneAt'>): Promise<void> {
    await ex.query('INSERT INTO mpi_merge (id, source_golden, target_golden, moved, reason, decided_by) VALUES ($1, $2, $3, $4::jsonb, $5, $6)', [
      m.id,
      m.sourceGolden,
      m.targetGolden,
      JSON.stringify(m.moved),
      m.reason,
      m.decidedBy,
    ]);
  },

  /** The merge, locked against a concurrent undo. */
  async lock(ex: SqlExecutor, id: string): Promise<Merge | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const rows = await ex.query<MergeRowDb>('SELECT * FROM mpi_merge WHERE id = $1 FOR UPDATE', [id]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      id: r.id,
      sourceGolden: r.source_golden,
      targetGolden: r.target_golden,
      moved: typeof r.moved === 'string' ? (JSON.parse(r.moved) as MovedLink[]) : r.moved,
      reason: r.reason,
      decidedBy: r.decided_by,
      createdAt: iso(r.created_at),
      ...(r.undone_at && { undoneAt: iso(r.undone_at) }),
    };
  },

  async markUndone(ex: SqlExecutor, id: string): Promise<void> {
    await ex.query('UPDATE mpi_merge SET undone_at = now() WHERE id = $1', [id]);
  },
};
