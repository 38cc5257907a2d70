import { AUTHOR_TAG_SYSTEM } from '../access';
import { DEFAULT_SENSITIVE_CODES } from '../access-labels';
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
  // Access labels (store/access.ts), per version so that history is filtered by each version's
  // own labels: the authoring facility, the sensitivity label, and the Patient ids the version
  // is about (an array, so the read filter is an overlap test rather than a probe of idx_ref
  // per row; a tombstone keeps its last labels). Opt-outs are the active deny Consents; the
  // view widens each to the whole person through mpi_link at query time, so a link, unlink or
  // merge changes who is hidden without rewriting any resource. Reads call the function, not the
  // view: PL/pgSQL keeps its plan per session, so a statement plans one call instead of the
  // view's joins (bench/access measured the view at three times the function's overhead).
  // Existing versions are labelled from their own content: the author tag, the default
  // sensitivity codes (store/access-labels.ts), and every Patient they reference (a migration
  // binds no parameters, so not only the compartment's references: a little stricter).
  `
  ALTER TABLE resource ADD COLUMN author text;
  ALTER TABLE resource ADD COLUMN sensitive boolean NOT NULL DEFAULT false;
  ALTER TABLE resource ADD COLUMN patients text[] NOT NULL DEFAULT '{}';
  ALTER TABLE resource_history ADD COLUMN author text;
  ALTER TABLE resource_history ADD COLUMN sensitive boolean NOT NULL DEFAULT false;
  ALTER TABLE resource_history ADD COLUMN patients text[] NOT NULL DEFAULT '{}';
  ${['resource', 'resource_history'].map((table) => labelFromContent(table)).join(';\n')};
  CREATE TABLE access_optout (
    consent_id text PRIMARY KEY,
    patient_id text NOT NULL
  );
  CREATE INDEX access_optout_patient ON access_optout (patient_id);
  INSERT INTO access_optout (consent_id, patient_id)
    SELECT r.id, x.tid FROM resource r JOIN idx_ref x ON x.rk = r.rk AND x.p = 'Consent.patient' AND x.ttype = 'Patient'
    WHERE r.type = 'Consent' AND NOT r.deleted AND r.content->>'status' = 'active' AND r.content->'provision'->>'type' = 'deny'
      AND r.content->'scope'->'coding' @> '[{"code": "patient-privacy"}]'
  ON CONFLICT DO NOTHING;
  CREATE VIEW access_opted_out AS
    WITH person AS (
      SELECT COALESCE((SELECT l.golden_id FROM mpi_link l WHERE l.patient_id = o.patient_id), o.patient_id) AS golden_id FROM access_optout o
    )
    SELECT golden_id AS patient_id FROM person
    UNION SELECT m.patient_id FROM person p JOIN mpi_link m ON m.golden_id = p.golden_id;
  CREATE FUNCTION access_opted_out_ids() RETURNS text[] LANGUAGE plpgsql STABLE AS $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM access_optout) THEN
      RETURN '{}';
    END IF;
    RETURN (SELECT COALESCE(array_agg(patient_id), '{}') FROM access_opted_out);
  END
  $$
  `,
  // Batch imports: a file read in chunks. A chunk is committed (its records and the reader's
  // checkpoint, `read_records`) before its job is queued, so a killed reader resumes after the
  // last chunk it wrote and a flushed queue loses nothing. Counts live on the chunks, which
  // workers finish concurrently, rather than on one hot import row. `import_key` (the file's
  // content hash with its source and format) makes running the same import again find it.
  `
  CREATE TABLE import_job (
    id uuid PRIMARY KEY,
    import_key text NOT NULL UNIQUE,
    format text NOT NULL,
    source text,
    charset text,
    facility text,
    unrestricted boolean NOT NULL DEFAULT false,
    client_id text,
    file_path text NOT NULL,
    file_bytes bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('reading', 'applying', 'done', 'cancelled', 'failed')),
    read_records bigint NOT NULL DEFAULT 0,
    read_bytes bigint NOT NULL DEFAULT 0,
    read_complete boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    resumed_at timestamptz NOT NULL DEFAULT now(),
    finished_at_resume bigint NOT NULL DEFAULT 0,
    finished_at timestamptz,
    outcome jsonb
  );
  CREATE TABLE import_chunk (
    import_id uuid NOT NULL REFERENCES import_job (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    records jsonb,
    size integer NOT NULL,
    done integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    finished_at timestamptz,
    PRIMARY KEY (import_id, seq)
  );
  CREATE TABLE import_error (
    import_id uuid NOT NULL REFERENCES import_job (id) ON DELETE CASCADE,
    line bigint NOT NULL,
    raw text NOT NULL,
    outcome jsonb NOT NULL,
    PRIMARY KEY (import_id, line)
  )
  `,
  // Forwarding upstream: while forwarding is on, every statement that writes resource versions
  // records them in forward_outbox, in the writer's transaction (statement triggers, so no
  // process can forget it and a batch costs one INSERT ... SELECT). The triggers are created
  // when forwarding is turned on and dropped when it is off (store/forward-log.ts): a trigger
  // with a transition table makes every write keep a copy of its rows, even when idle.
  // `xid` lets the forwarder take only rows whose transaction, and every earlier one, has
  // committed: seq alone would let a slow transaction's rows slip behind the forwarder.
  `
  CREATE TABLE forward_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    upstream text NOT NULL,
    owner text,
    lease_until timestamptz
  );
  CREATE TABLE forward_outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type text NOT NULL,
    id text NOT NULL,
    version integer NOT NULL,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    queued_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE FUNCTION forward_capture() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO forward_outbox (type, id, version) SELECT type, id, version FROM changed ORDER BY type, id;
    RETURN NULL;
  END
  $$
  `,
  // Treatment relationships (store/access.ts): an open Task asking one facility to act for a
  // patient (a referral, a remote reading) lets its requester and owner read that person's
  // records past an opt-out while it stays open. Kept in step with the Tasks written, as
  // access_optout is with Consents, and widened to the whole person through mpi_link at query
  // time; like access_opted_out_ids, a function so that a read plans one call.
  `
  CREATE TABLE access_treatment (
    task_id text PRIMARY KEY,
    patient_id text NOT NULL,
    facilities text[] NOT NULL
  );
  CREATE INDEX access_treatment_facilities ON access_treatment USING gin (facilities);
  CREATE FUNCTION access_treated_ids(reader text) RETURNS text[] LANGUAGE plpgsql STABLE AS $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM access_treatment WHERE facilities @> ARRAY[reader]) THEN
      RETURN '{}';
    END IF;
    RETURN (
      WITH person AS (
        SELECT DISTINCT COALESCE((SELECT l.golden_id FROM mpi_link l WHERE l.patient_id = t.patient_id), t.patient_id) AS golden_id
        FROM access_treatment t WHERE t.facilities @> ARRAY[reader]
      )
      SELECT COALESCE(array_agg(DISTINCT x.id), '{}') FROM (
        SELECT golden_id AS id FROM person UNION SELECT m.patient_id FROM person p JOIN mpi_link m ON m.golden_id = p.golden_id
      ) x
    );
  END
  $$
  `,
  // Notifications (FHIR Subscriptions, workers/notify): a row trigger records, in the writer's
  // transaction, each version of a type some Subscription watches, for the dispatcher to match
  // against the criteria. Its WHEN clause names the watched types as constants (rewritten by
  // store/notify-log.ts when they change), so a write of any other type costs no function call
  // and no row; Subscriptions themselves are always captured, which is how the dispatcher
  // learns of a new one. `xid` plays the part it plays for forwarding.
  `
  CREATE TABLE notify_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    watched text[] NOT NULL DEFAULT '{}',
    owner text,
    lease_until timestamptz
  );
  INSERT INTO notify_state DEFAULT VALUES;
  CREATE TABLE notify_outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type text NOT NULL,
    id text NOT NULL,
    version integer NOT NULL,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id()
  );
  CREATE FUNCTION notify_capture() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO notify_outbox (type, id, version) VALUES (NEW.type, NEW.id, NEW.version);
    RETURN NULL;
  END
  $$;
  CREATE TRIGGER notify_captured AFTER INSERT OR UPDATE ON resource FOR EACH ROW WHEN (NEW.type IN ('Subscription')) EXECUTE FUNCTION notify_capture();
  CREATE TABLE notify_dead_letter (
    subscription_id text NOT NULL,
    type text NOT NULL,
    id text NOT NULL,
    version integer NOT NULL,
    attempts integer NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, type, id, version)
  )
  `,
  // Disclosures (store/access.ts): a completed referral or reading leaves the records it carried
  // (the Task, its ServiceRequest and that one's supportingInfo, its inputs and outputs)
  // readable by both of its facilities past an opt-out, as the treatment relationship did while
  // it was open. Kept in step with the Tasks written (store/writer.ts); one 'Type/id' per row.
  `
  CREATE TABLE access_disclosure (
    task_id text NOT NULL,
    ref text NOT NULL,
    facilities text[] NOT NULL,
    PRIMARY KEY (task_id, ref)
  );
  CREATE INDEX access_disclosure_facilities ON access_disclosure USING gin (facilities);
  CREATE FUNCTION access_disclosed_refs(reader text) RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT COALESCE(array_agg(DISTINCT ref), '{}') FROM access_disclosure WHERE facilities @> ARRAY[reader]
  $$
  `,
  // Every registration (and golden id) of every person who opted out (store/access-filter.ts),
  // kept in step with access_optout and mpi_link by triggers, so that a read probes each row's
  // patients by primary key instead of rebuilding the whole opted-out set through the patient
  // index for every statement (migration 4's view, which grew with the number of opt-outs). A
  // person's membership is recomputed under a lock on that person: two transactions changing
  // the same person one its opt-out, the other its links, take turns, and the second sees what
  // the first committed. access_opted_out_ids() stays for gateways of the previous version
  // during a rolling upgrade.
  `
  CREATE TABLE access_optout_member (patient_id text PRIMARY KEY);
  CREATE FUNCTION access_optout_refresh(any_id text) RETURNS void LANGUAGE plpgsql AS $$
  DECLARE
    person text;
    locked text;
    members text[];
  BEGIN
    LOOP
      person := COALESCE((SELECT golden_id FROM mpi_link WHERE patient_id = any_id), any_id);
      EXIT WHEN person IS NOT DISTINCT FROM locked;
      PERFORM pg_advisory_xact_lock(hashtext('access_optout:' || person));
      locked := person;
    END LOOP;
    members := ARRAY(SELECT person UNION SELECT patient_id FROM mpi_link WHERE golden_id = person);
    DELETE FROM access_optout_member WHERE patient_id = ANY(members);
    IF EXISTS (SELECT 1 FROM access_optout WHERE patient_id = ANY(members)) THEN
      INSERT INTO access_optout_member SELECT unnest(members) ON CONFLICT DO NOTHING;
    END IF;
  END
  $$;
  CREATE FUNCTION access_optout_follow() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP <> 'DELETE' THEN
      PERFORM access_optout_refresh(NEW.patient_id);
    END IF;
    IF TG_OP <> 'INSERT' THEN
      -- What the update left as it was is refreshed above, under the new person.
      IF TG_OP = 'DELETE' OR OLD.patient_id IS DISTINCT FROM NEW.patient_id THEN
        PERFORM access_optout_refresh(OLD.patient_id);
      END IF;
      IF TG_TABLE_NAME = 'mpi_link' THEN
        IF TG_OP = 'DELETE' OR OLD.golden_id IS DISTINCT FROM NEW.golden_id THEN
          PERFORM access_optout_refresh(OLD.golden_id);
        END IF;
      END IF;
    END IF;
    RETURN NULL;
  END
  $$;
  CREATE TRIGGER access_optout_consent AFTER INSERT OR UPDATE OR DELETE ON access_optout FOR EACH ROW EXECUTE FUNCTION access_optout_follow();
  CREATE TRIGGER access_optout_link AFTER INSERT OR UPDATE OF patient_id, golden_id OR DELETE ON mpi_link FOR EACH ROW EXECUTE FUNCTION access_optout_follow();
  INSERT INTO access_optout_member SELECT patient_id FROM access_opted_out
  `,
];

/** Migration 4's labelling of the versions stored before it (a fixed text: names no value from a request). */
function labelFromContent(table: string): string {
  const sensitive = DEFAULT_SENSITIVE_CODES.map((c) => `'${c.system}|${c.code}'`).join(', ');
  return `UPDATE ${table} r SET
    author = (SELECT t->>'code' FROM jsonb_array_elements(r.content->'meta'->'tag') t WHERE t->>'system' = '${AUTHOR_TAG_SYSTEM}' LIMIT 1),
    sensitive = EXISTS (SELECT 1 FROM jsonb_array_elements(r.content->'meta'->'security') s WHERE concat(s->>'system', '|', s->>'code') IN (${sensitive})),
    patients = ARRAY(SELECT DISTINCT substr(v #>> '{}', 9) FROM jsonb_path_query(r.content, 'lax $.**.reference') v WHERE v #>> '{}' LIKE 'Patient/%')
      || CASE WHEN r.type = 'Patient' THEN ARRAY[r.id] ELSE '{}'::text[] END
  WHERE NOT r.deleted`;
}

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

// Transactions hand out single-statement query(): split on semicolons, except inside a
// $$-quoted function body. The migrations hold no semicolons in other literals.
function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  sql.split('$$').forEach((part, i) => {
    if (i % 2 === 1) {
      current += `$$${part}$$`;
      return;
    }
    const pieces = part.split(';');
    current += pieces[0];
    for (const piece of pieces.slice(1)) {
      statements.push(current);
      current = piece;
    }
  });
  statements.push(current);
  return statements.map((s) => s.trim()).filter(Boolean);
}
