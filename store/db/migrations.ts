import type { Database } from './database';

/**
 * Schema versions, applied in order at start under an advisory lock so that a gateway and its
 * workers starting together never race. Append new steps; never edit an applied one.
 *
 * Layout: `resource` holds each resource's current version (and a tombstone when deleted);
 * `resource_history` holds superseded versions only, so a create writes its JSON once.
 * Search indexes are five narrow tables keyed by the resource's surrogate key `rk`, one per
 * value kind, with `p` = '<Type>.<param>'; they are written in the resource's transaction.
 */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE resource (
    rk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type text NOT NULL,
    id text NOT NULL,
    version integer NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    content jsonb,
    CONSTRAINT resource_type_id UNIQUE (type, id)
  );
  CREATE INDEX resource_type_updated ON resource (type, last_updated);
  CREATE INDEX resource_updated ON resource (last_updated);

  CREATE TABLE resource_history (
    rk bigint NOT NULL,
    type text NOT NULL,
    id text NOT NULL,
    version integer NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted boolean NOT NULL,
    content jsonb,
    PRIMARY KEY (rk, version)
  );
  CREATE INDEX resource_history_type_updated ON resource_history (type, last_updated);
  CREATE INDEX resource_history_updated ON resource_history (last_updated);

  CREATE TABLE idx_token (rk bigint NOT NULL, p text NOT NULL, sys text, code text NOT NULL);
  CREATE INDEX idx_token_lookup ON idx_token (p, code, sys) INCLUDE (rk);
  CREATE INDEX idx_token_rk ON idx_token (rk);

  CREATE TABLE idx_string (rk bigint NOT NULL, p text NOT NULL, v text COLLATE "C" NOT NULL, raw text NOT NULL);
  CREATE INDEX idx_string_lookup ON idx_string (p, v) INCLUDE (rk);
  CREATE INDEX idx_string_rk ON idx_string (rk);

  CREATE TABLE idx_date (rk bigint NOT NULL, p text NOT NULL, lo timestamptz NOT NULL, hi timestamptz NOT NULL);
  CREATE INDEX idx_date_lookup ON idx_date (p, lo) INCLUDE (hi, rk);
  CREATE INDEX idx_date_rk ON idx_date (rk);

  CREATE TABLE idx_ref (rk bigint NOT NULL, p text NOT NULL, ttype text NOT NULL, tid text NOT NULL);
  CREATE INDEX idx_ref_target ON idx_ref (tid, p, ttype) INCLUDE (rk);
  CREATE INDEX idx_ref_rk ON idx_ref (rk);

  CREATE TABLE idx_number (rk bigint NOT NULL, p text NOT NULL, v numeric NOT NULL, sys text, code text);
  CREATE INDEX idx_number_lookup ON idx_number (p, v) INCLUDE (rk);
  CREATE INDEX idx_number_rk ON idx_number (rk);
  `,
  // The ingest log: every record a facility sent, kept as received before it is acknowledged,
  // with its fate. `seq` is arrival order; `patient_key` (the Patient the record is about)
  // lets a worker apply one patient's records in that order.
  `
  CREATE TABLE ingest_message (
    id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    source text NOT NULL,
    kind text NOT NULL,
    control_id text,
    received_at timestamptz NOT NULL DEFAULT now(),
    charset text,
    body bytea NOT NULL,
    patient_key text,
    state text NOT NULL CHECK (state IN ('received', 'done', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    finished_at timestamptz,
    outcome jsonb,
    resources jsonb,
    unmapped jsonb
  );
  CREATE INDEX ingest_message_pending ON ingest_message (patient_key, seq) WHERE state = 'received';
  CREATE INDEX ingest_message_waiting ON ingest_message (seq) WHERE state = 'received';
  CREATE INDEX ingest_message_source ON ingest_message (source, state)
  `,
  // The patient index (mpi/): one row per facility Patient naming its golden record, the keys
  // it is blocked under, the review queue, merges (kept to be undone) and every link change.
  // The primary key of mpi_link is what guarantees one golden record per facility Patient.
  `
  CREATE TABLE mpi_golden (
    id text PRIMARY KEY,
    merged_into text,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE mpi_link (
    patient_id text PRIMARY KEY,
    golden_id text NOT NULL REFERENCES mpi_golden (id),
    link_source text NOT NULL CHECK (link_source IN ('AUTO', 'MANUAL')),
    score real,
    rule text NOT NULL,
    rules_version text NOT NULL,
    features jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX mpi_link_golden ON mpi_link (golden_id);
  CREATE TABLE mpi_block (
    key text COLLATE "C" NOT NULL,
    patient_id text NOT NULL,
    PRIMARY KEY (key, patient_id)
  );
  CREATE INDEX mpi_block_patient ON mpi_block (patient_id);
  CREATE TABLE mpi_candidate (
    patient_id text NOT NULL,
    golden_id text NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'accepted', 'rejected')),
    score real,
    levels jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz,
    decided_by text,
    PRIMARY KEY (patient_id, golden_id)
  );
  CREATE INDEX mpi_candidate_open ON mpi_candidate (created_at) WHERE state = 'open';
  CREATE TABLE mpi_merge (
    id uuid PRIMARY KEY,
    source_golden text NOT NULL,
    target_golden text NOT NULL,
    moved jsonb NOT NULL,
    reason text NOT NULL,
    decided_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    undone_at timestamptz
  );
  CREATE TABLE mpi_link_history (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id text NOT NULL,
    golden_id text,
    link_source text,
    score real,
    rule text,
    decided_by text,
    at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX mpi_link_history_patient ON mpi_link_history (patient_id, seq)
  `,
];

const LOCK_KEY = 727_001; // any constant shared by every process of this gateway

export async function migrate(db: Database): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await tx.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(done.map((r) => r.version));
    for (let i = 0; i < MIGRATIONS.length; i++) {
      if (applied.has(i + 1)) continue;
      for (const stmt of splitStatements(MIGRATIONS[i])) await tx.query(stmt);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [i + 1]);
    }
    return MIGRATIONS.length;
  });
}

// Transactions hand out single-statement query(); the migrations hold no semicolons in literals.
function splitStatements(sql: string): string[] {
  return sql.split(';').map((s) => s.trim()).filter(Boolean);
}
