/**
 * Bulk export jobs in the gateway process: started in the background, polled and cancelled
 * by the client that started them. A job runs where it was started (its files are in this
 * process's DATA_DIR); a restart fails what was running rather than leave it hanging.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { OperationOutcome } from '@medplum/fhirtypes';
import { FhirError, notFound } from '../../store/errors';
import type { Repository } from '../../store/repository';
import { JobFiles, type ExportJob } from './jobs';
import { runExport, type ExportScope } from './run';

export const DEFAULT_PAGE_SIZE = 1000;

export interface ExportOptions {
  /** Where the jobs' directories go: DATA_DIR/exports in the gateway. */
  dir: string;
  /** Resources per store query; small in tests, to page. */
  pageSize?: number;
  /** Told of failures that are not the client's (the job says only that it failed). */
  onError?: (err: unknown) => void;
}

export interface ExportStart {
  owner: string;
  /** The store bound to the requesting client. */
  repo: Repository;
  scope: ExportScope;
  types: string[];
  since?: string;
  request: string;
  warnings: OperationOutcome[];
}

const STOPPED = 'The gateway stopped while this export was running; start it again';

export class ExportService {
  private readonly files: JobFiles;
  private readonly running = new Map<string, { job: ExportJob; controller: AbortController; done: Promise<void> }>();

  constructor(private readonly options: ExportOptions) {
    this.files = new JobFiles(options.dir);
  }

  /** On start: what a previous process left running cannot finish; say so in its status. Returns how many. */
  async recover(): Promise<number> {
    const stale = (await this.files.all()).filter((j) => j.status === 'in-progress' && !this.running.has(j.id));
    for (const job of stale) await this.files.save({ ...job, status: 'failed', failure: STOPPED });
    return stale.length;
  }

  async start(s: ExportStart): Promise<ExportJob> {
    const job: ExportJob = {
      id: randomUUID(),
      owner: s.owner,
      level: s.scope.level,
      status: 'in-progress',
      request: s.request,
      transactionTime: new Date().toISOString(),
      types: s.types,
      typesDone: 0,
      exported: 0,
      output: [],
      error: [],
    };
    await this.files.create(job);
    const controller = new AbortController();
    const run = { job, repo: s.repo, scope: s.scope, since: s.since, warnings: s.warnings, pageSize: this.options.pageSize ?? DEFAULT_PAGE_SIZE, signal: controller.signal };
    const done = runExport(this.files, run)
      .then(() => {
        job.status = 'completed';
        return this.files.save(job);
      })
      .catch((err: unknown) => this.failed(job, controller.signal, err))
      .finally(() => this.running.delete(job.id));
    this.running.set(job.id, { job, controller, done });
    return job;
  }

  private async failed(job: ExportJob, signal: AbortSignal, err: unknown): Promise<void> {
    if (signal.aborted && signal.reason === 'cancelled') return; // its directory is being removed
    if (!signal.aborted && !(err instanceof FhirError)) this.options.onError?.(err);
    job.status = 'failed';
    job.failure = signal.aborted ? STOPPED : err instanceof FhirError ? err.message : 'The export failed on an internal error';
    await this.files.save(job).catch((e: unknown) => this.options.onError?.(e));
  }

  /** The job, for its owner only: to anyone else it does not exist. A running one is read live, for its progress. */
  async get(id: string, owner: string): Promise<ExportJob> {
    const job = this.running.get(id)?.job ?? (await this.files.load(id));
    if (!job || job.owner !== owner) throw notFound(`No export ${id}`);
    return job;
  }

  /** Stops the job if running and removes it with its files. */
  async cancel(id: string, owner: string): Promise<void> {
    await this.get(id, owner);
    const running = this.running.get(id);
    if (running) {
      running.controller.abort('cancelled');
      await running.done;
    }
    await this.files.remove(id);
  }

  /** Path of one of the job's files, by the name its manifest gave; 404 for any other name. */
  async file(id: string, owner: string, name: string): Promise<{ path: string; type: string }> {
    const job = await this.get(id, owner);
    const f = job.status === 'completed' ? [...job.output, ...job.error].find((x) => x.file === name) : undefined;
    if (!f) throw notFound(`Export ${id} has no file ${name}`);
    return { path: join(this.files.dir(id), f.file), type: f.type };
  }

  /** On shutdown: running jobs stop at their next page and are marked failed. */
  async close(): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) r.controller.abort('shutdown');
    await Promise.all(all.map((r) => r.done));
  }
}
