/**
 * Writes a bulk export: one NDJSON file per type, page by page through the store bound to
 * the client who asked, so memory holds one page whatever the size and the access rules
 * leave out exactly what they leave out of a search.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Repository } from '../../store/repository';
import type { StoredResource } from '../../store/stored';
import type { ExportJob, JobFiles } from './jobs';

/** Whose records: everyone (system), every patient's compartment, or some patients' compartments. */
export type ExportScope = { level: 'system' } | { level: 'patient' } | { level: 'group'; patients: string[] };

export interface ExportRun {
  job: ExportJob;
  /** The store as the requesting client sees it. */
  repo: Repository;
  scope: ExportScope;
  /** meta.lastUpdated lower bound (`_since`). */
  since?: string;
  /** Written to the error file before anything else (e.g. Group members that are not Patients). */
  warnings: OperationOutcome[];
  pageSize: number;
  /** Aborted on cancel or shutdown: the run stops at the next page. */
  signal: AbortSignal;
}

export async function runExport(files: JobFiles, run: ExportRun): Promise<void> {
  const { job } = run;
  const dir = files.dir(job.id);
  if (run.warnings.length > 0) {
    const file = 'OperationOutcome.ndjson';
    const out = createWriteStream(join(dir, file));
    await write(out, run.warnings.map((w) => JSON.stringify(w)));
    await close(out);
    job.error.push({ type: 'OperationOutcome', file, count: run.warnings.length });
  }
  for (const type of job.types) {
    let out: WriteStream | undefined;
    let count = 0;
    try {
      for await (const page of pages(run, type)) {
        run.signal.throwIfAborted();
        if (page.length === 0) continue;
        // Opened on the first resource: a type with none gets no file, as the IG allows.
        out ??= createWriteStream(join(dir, `${type}.ndjson`));
        await write(out, page.map((s) => s.json!));
        count += page.length;
        job.exported += page.length;
      }
    } finally {
      if (out) await close(out);
    }
    if (count > 0) job.output.push({ type, file: `${type}.ndjson`, count });
    job.typesDone++;
    await files.save(job);
  }
}

/** One type's current versions in the job's window, a page at a time, by keyset cursor. */
async function* pages(run: ExportRun, type: string): AsyncGenerator<StoredResource[]> {
  const { repo, scope, since, pageSize: count } = run;
  const until = run.job.transactionTime;
  if (scope.level === 'system') {
    const params: [string, string][] = [['_count', String(count)], ['_lastUpdated', `le${until}`]];
    if (since) params.push(['_lastUpdated', `ge${since}`]);
    const { query, ...first } = await repo.search(type, params, { strict: true });
    let page = first;
    yield page.matches;
    while (page.next) {
      page = await repo.runSearch({ ...query, cursor: page.next });
      yield page.matches;
    }
    return;
  }
  const patients = scope.level === 'group' ? scope.patients : undefined;
  let cursor;
  do {
    const page = await repo.compartment(patients, { types: [type], since, until, count, cursor });
    yield page.entries;
    cursor = page.next;
  } while (cursor);
}

/** One write per page; waits while the file is behind, so pages never pile up in memory. */
async function write(out: WriteStream, lines: string[]): Promise<void> {
  if (!out.write(`${lines.join('\n')}\n`)) await once(out, 'drain');
}

async function close(out: WriteStream): Promise<void> {
  if (out.closed) return; // already torn down by a failed write
  out.end();
  await once(out, 'close');
}
