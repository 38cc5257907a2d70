/**
 * Bulk export jobs as small JSON files, one directory per job under DATA_DIR/exports: the
 * state lives beside the NDJSON it describes, so removing the directory removes the job,
 * and no database table (nor migration) is needed.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type ExportLevel = 'system' | 'patient' | 'group';

export interface ExportFile {
  type: string;
  /** File name inside the job's directory. */
  file: string;
  count: number;
}

export interface ExportJob {
  id: string;
  /** Who started it (operatorName: the client, and the clinician of a user token): only they may poll, download or cancel it. */
  owner: string;
  level: ExportLevel;
  status: 'in-progress' | 'completed' | 'failed';
  /** The kick-off URL, as the manifest repeats it. */
  request: string;
  /** Nothing changed after this instant is exported (the IG's transactionTime). */
  transactionTime: string;
  types: string[];
  /** Types finished so far, and resources written so far: the progress shown while running. */
  typesDone: number;
  exported: number;
  output: ExportFile[];
  /** NDJSON files of OperationOutcome (resources the export had to leave out). */
  error: ExportFile[];
  /** Why a failed job failed, in words fit for the client. */
  failure?: string;
}

/** Job ids are our own UUIDs; anything else in a URL is no job of ours. */
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STATE = 'job.json';

export class JobFiles {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  async create(job: ExportJob): Promise<void> {
    await mkdir(this.dir(job.id), { recursive: true });
    await this.save(job);
  }

  /** Written whole then renamed, so a poll or a crash never sees half a file. */
  async save(job: ExportJob): Promise<void> {
    const path = join(this.dir(job.id), STATE);
    await writeFile(`${path}.tmp`, JSON.stringify(job));
    await rename(`${path}.tmp`, path);
  }

  async load(id: string): Promise<ExportJob | undefined> {
    if (!JOB_ID.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.dir(id), STATE), 'utf8')) as ExportJob;
    } catch {
      return undefined;
    }
  }

  async remove(id: string): Promise<void> {
    if (JOB_ID.test(id)) await rm(this.dir(id), { recursive: true, force: true });
  }

  async all(): Promise<ExportJob[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const jobs = await Promise.all(names.map((n) => this.load(n)));
    return jobs.filter((j): j is ExportJob => j !== undefined);
  }
}
