/**
 * Applies one chunk of an import: every record goes through the mapper, the profiles and the
 * store's write path exactly as a record sent alone does (prepare, writeMapped); what differs
 * is only that a chunk's records share one transaction, the one that marks the chunk applied,
 * so a worker killed halfway leaves the chunk to do again and nothing half-written.
 */
import type { Logger } from 'pino';
import { mapNdjsonLine } from '../../mappers/fhir-ndjson';
import { readHeader } from '../../mappers/hl7v2/header';
import { MappingError, type MapResult } from '../../mappers/types';
import { importLog, type ImportError, type ImportJob, type ImportRecord } from '../../store/imports';
import type { Repository } from '../../store/repository';
import { foreignMrnFacility } from '../foreign-mrn';
import { combined } from '../combined';
import { failureOutcome, lockPatientKeys, mapperBugOutcome, patientKey, prepare, writeMapped, type IngestDeps } from '../ingest';

export type ImportDeps = Pick<IngestDeps, 'repo' | 'sources' | 'mpi'> & { log: Logger };

interface Mapped {
  record: ImportRecord;
  mapped: MapResult;
  source: string;
}

/** Applies chunk `seq`; true when it was the import's last, and the import is now done. */
export async function applyChunk(deps: ImportDeps, job: ImportJob, seq: number): Promise<boolean> {
  await deps.repo.transaction(async (tx) => {
    const records = await importLog.lockChunk(tx.executor, job.id, seq);
    if (!records) return;
    const errors: ImportError[] = [];
    const good: Mapped[] = [];
    for (const record of records) {
      try {
        good.push(mapImportRecord(deps, job, record));
      } catch (err) {
        errors.push({ line: record.line, raw: record.raw, outcome: failureOutcome(err) ?? unexpected(deps.log, job, err) });
      }
    }
    await lockPatientKeys(tx, good.flatMap((g) => patientKey(g.mapped) ?? []));
    const repo = tx.withAccess(job.unrestricted ? { unrestricted: true } : { facility: job.facility });
    const written = await writeAll(deps, repo, good, errors);
    await importLog.finishChunk(tx.executor, job.id, seq, written, errors);
  });
  return importLog.finishIfComplete(deps.repo.executor, job.id);
}

/**
 * The chunk's records in one savepoint, the fast path; if one of them is refused (bad data the
 * mapper could not see: another facility's resource, a broken reference), the chunk is
 * written again record by record, each in its own savepoint, so only that record fails.
 */
async function writeAll(deps: ImportDeps, repo: Repository, good: Mapped[], errors: ImportError[]): Promise<number> {
  if (good.length === 0) return 0;
  try {
    // Merges move records between persons one at a time; anything else is written as one Bundle.
    await repo.savepoint(async (r) => {
      if (good.some((g) => g.mapped.merge)) for (const g of good) await writeMapped(deps, r, g.mapped, g.source);
      else await writeMapped(deps, r, combined(good.map((g) => g.mapped)), good[0].source);
    });
    return good.length;
  } catch (err) {
    if (!failureOutcome(err)) throw err;
  }
  let written = 0;
  for (const g of good) {
    try {
      await repo.savepoint((r) => writeMapped(deps, r, g.mapped, g.source));
      written++;
    } catch (err) {
      const reason = failureOutcome(err);
      if (!reason) throw err;
      errors.push({ line: g.record.line, raw: g.record.raw, outcome: reason });
    }
  }
  return written;
}

/** A record to what it maps to, with the checks receipt makes of the same record sent alone. */
function mapImportRecord(deps: ImportDeps, job: ImportJob, record: ImportRecord): Mapped {
  if (record.unreadable) throw new MappingError(record.unreadable, { line: record.line }, 'value');
  if (job.format === 'ndjson') return { record, mapped: mapNdjsonLine(record.raw, record.line), source: job.source ?? 'import' };
  const source = job.source!;
  if (job.format === 'hl7v2') checkHl7Sender(deps, source, record.raw);
  return { record, mapped: prepare(deps, { source, body: Buffer.from(record.raw, 'utf8'), charset: job.format === 'hl7v2' ? 'UTF-8' : null }), source };
}

/** An import names its source; each message must be that source's, and file its own patients. */
function checkHl7Sender(deps: ImportDeps, sourceId: string, text: string): void {
  const ctx = deps.sources.get(sourceId)!;
  const header = readHeader(text);
  if (!header.sendingFacility || !ctx.source.sendingFacility?.includes(header.sendingFacility)) {
    throw new MappingError(`sending facility '${header.sendingFacility ?? ''}' is not the import's source '${sourceId}'`, { segment: 'MSH', field: 4 }, 'not-supported');
  }
  const foreign = foreignMrnFacility(text, ctx.source, deps.sources.sources);
  if (foreign) throw new MappingError(`the patient's MRN is assigned by another facility (${foreign}); a source files its own patients only`, { segment: 'PID', field: 3 }, 'not-supported');
}

function unexpected(log: Logger, job: ImportJob, err: unknown) {
  log.error({ importId: job.id, source: job.source, err: (err as Error)?.message }, 'mapper failed unexpectedly on an imported record');
  return mapperBugOutcome();
}
