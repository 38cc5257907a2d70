import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Queue } from 'bullmq';
import { importLog, type ImportJob, type NewImport } from '../../store/imports';
import type { Repository } from '../../store/repository';
import type { ImportJobData } from '../queues';
import { resumeImports } from './worker';

/** What the caller decides of an import (see NewImport); the rest is derived from the file. */
export type ImportRequest = Pick<NewImport, 'format' | 'source' | 'charset' | 'facility' | 'unrestricted' | 'clientId'> & { path: string };

/**
 * Starts an import of a file, or finds the one made of the same content before: an unfinished,
 * cancelled or failed one carries on where it stopped (the same command after a crash), a
 * finished one is left as it is (running it again changes nothing). The file is hashed whole first: a name says nothing
 * about what a file now holds.
 */
export async function openImport(deps: { repo: Repository; queue: Queue<ImportJobData> }, req: ImportRequest): Promise<{ job: ImportJob; created: boolean }> {
  const size = (await stat(req.path)).size;
  const content = await sha256(req.path);
  const key = createHash('sha256')
    .update(JSON.stringify([req.format, req.source ?? null, req.charset?.toLowerCase() ?? null, req.facility ?? null, req.unrestricted, content]))
    .digest('hex');
  const { job, created } = await importLog.open(deps.repo.executor, {
    id: randomUUID(),
    key,
    format: req.format,
    ...(req.source && { source: req.source }),
    ...(req.charset && { charset: req.charset }),
    ...(req.facility && { facility: req.facility }),
    unrestricted: req.unrestricted,
    ...(req.clientId && { clientId: req.clientId }),
    filePath: req.path,
    fileBytes: size,
  });
  if (!created && job.state === 'done') return { job, created };
  if (!created) {
    await importLog.reopen(deps.repo.executor, job.id);
    // The same content may sit under another name now (an upload is stored once per request).
    await importLog.resume(deps.repo.executor, job.id, req.path);
  }
  await resumeImports(deps, job.id);
  return { job: created ? job : ((await importLog.get(deps.repo.executor, job.id)) ?? job), created };
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
