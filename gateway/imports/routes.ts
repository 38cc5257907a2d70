import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, realpath, rm, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Queue } from 'bullmq';
import express, { Router, type Request, type Response } from 'express';
import { badRequest, FhirError, notFound } from '../../store/errors';
import { importLog, type ImportFormat, type ImportJob } from '../../store/imports';
import type { Repository } from '../../store/repository';
import { openImport } from '../../workers/import/open';
import type { ImportJobData } from '../../workers/queues';
import type { SourceRegistry } from '../../workers/sources';
import type { Principal } from '../auth/principal';
import { isOffice, principalOf, requireScope } from '../auth/require';
import { sendJson } from '../fhir/routes';

export interface ImportRoutesDeps {
  repo: Repository;
  queue: Queue<ImportJobData>;
  sources: SourceRegistry;
  /** Where uploads are kept while they are imported (under DATA_DIR). */
  uploadDir: string;
  /** The server folder a `path` may name (IMPORT_DIR); unset: uploads only. */
  importDir?: string;
  /** Largest upload kept (MAX_IMPORT_BYTES); larger is a 413, and nothing of it stays on disk. */
  maxUploadBytes?: number;
}

export const DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024 ** 3;

const tooLarge = (max: number): FhirError => new FhirError(413, 'too-costly', `The upload is larger than ${max} bytes (MAX_IMPORT_BYTES): split the file, or name a server file with {"path": ...}`);

const FORMATS: ReadonlySet<string> = new Set(['csv', 'hl7v2', 'ndjson']);

/**
 * `/imports`: batch loads of a facility's history. A file is uploaded as the body (any type
 * but JSON) or named by `path` in a JSON body, under the server's import folder; the import
 * runs in the background and `GET /imports/{id}` follows it. The work is in workers/import.
 */
export function importsRouter(deps: ImportRoutesDeps): Router {
  const r = Router();

  r.post('/', express.json({ limit: '16kb' }), async (req, res) => {
    const p = principalOf(res);
    const fromJson = req.is('application/json') ? (req.body as Record<string, unknown>) : undefined;
    const param = (name: string): string | undefined => {
      const v = fromJson ? fromJson[name] : req.query[name];
      if (v !== undefined && typeof v !== 'string') throw badRequest(`'${name}' must be a string`);
      return v === '' ? undefined : v;
    };
    const format = param('format');
    if (!format || !FORMATS.has(format)) throw badRequest(`'format' must be one of ${[...FORMATS].join(', ')}`);
    const source = param('source');
    const charset = param('charset');
    const writer = authorise(p, res, format as ImportFormat, source);
    const upload = fromJson ? undefined : await saveUpload(req);
    const path = upload ?? (await serverFile(param('path')));
    const { job, created } = await openImport(deps, { format: format as ImportFormat, source, charset, ...writer, clientId: p.clientId, path });
    // The same content was imported before: this copy is not needed.
    if (upload && job.filePath !== upload) await rm(upload, { force: true });
    res.set('Location', `${req.baseUrl}/${job.id}`);
    sendJson(res, created ? 202 : 200, await view(job));
  });

  r.get('/:id', async (req, res) => {
    sendJson(res, 200, await view(await owned(req, res)));
  });

  r.delete('/:id', async (req, res) => {
    const job = await owned(req, res);
    if (!(await importLog.cancel(deps.repo.executor, job.id))) throw new FhirError(409, 'conflict', `The import is already ${job.state}`);
    sendJson(res, 200, await view((await importLog.get(deps.repo.executor, job.id))!));
  });

  /** NDJSON, in file order: the line, the raw record, why it failed. Paged from the database, so any number streams. */
  r.get('/:id/errors', async (req, res) => {
    const job = await owned(req, res);
    res.status(200).type('application/x-ndjson');
    for (let after = 0; ; ) {
      const page = await importLog.errors(deps.repo.executor, job.id, after, 1000);
      for (const e of page) res.write(`${JSON.stringify(e)}\n`);
      if (page.length < 1000) break;
      after = page[page.length - 1].line;
    }
    res.end();
  });

  /** Who the records are written as: a facility imports only for its own sources; FHIR NDJSON needs the scopes to write any type. */
  function authorise(p: Principal, res: Response, format: ImportFormat, source?: string): { facility?: string; unrestricted: boolean } {
    if (format === 'ndjson') {
      if (source) throw badRequest("FHIR NDJSON is not a source's format: leave 'source' out");
      requireScope(res, '*', 'c', 'u');
      return isOffice(p) ? { unrestricted: true } : { facility: p.facility, unrestricted: false };
    }
    const ctx = source ? deps.sources.get(source) : undefined;
    if (!ctx) throw badRequest(`'source' must name a registered source`);
    const wants = format === 'hl7v2' ? 'hl7v2' : 'community-csv';
    if (ctx.source.format !== wants) throw badRequest(`Source '${source}' sends ${ctx.source.format}, not ${format}`);
    if (!isOffice(p) && ctx.source.facility !== p.facility) throw new FhirError(403, 'forbidden', `Source '${source}' belongs to another facility`);
    return { facility: ctx.source.facility, unrestricted: false };
  }

  /** An import is its client's facility's business, and the office's; others learn nothing, not even that it exists. */
  async function owned(req: Request, res: Response): Promise<ImportJob> {
    const p = principalOf(res);
    const job = await importLog.get(deps.repo.executor, String(req.params.id));
    const mine = job && (isOffice(p) || (job.facility !== undefined && job.facility === p.facility));
    if (!mine) throw notFound(`No import ${req.params.id}`);
    return job;
  }

  async function saveUpload(req: Request): Promise<string> {
    const max = deps.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    if (Number(req.get('content-length') ?? 0) > max) throw tooLarge(max);
    await mkdir(deps.uploadDir, { recursive: true });
    const file = join(deps.uploadDir, `${randomUUID()}.upload`);
    let received = 0;
    // Counted as it streams: a chunked upload has no Content-Length to refuse up front.
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        done(received > max ? tooLarge(max) : null, chunk);
      },
    });
    try {
      await pipeline(req, limit, createWriteStream(file));
    } catch (err) {
      // Too large, or the client went away: nothing half-written is kept.
      await rm(file, { force: true });
      throw err;
    }
    if ((await stat(file)).size === 0) {
      await rm(file, { force: true });
      throw badRequest('The upload is empty: send the file as the request body, or name a server file with {"path": ...}');
    }
    return file;
  }

  /** A file under IMPORT_DIR, resolved through links so that `..` or a symlink cannot reach outside it. */
  async function serverFile(path?: string): Promise<string> {
    if (!path) throw badRequest("Send the file as the body, or name it with 'path' in a JSON body");
    if (!deps.importDir) throw new FhirError(403, 'forbidden', 'Importing server files is off (IMPORT_DIR is not set)');
    const root = await realpath(deps.importDir);
    let real: string;
    try {
      real = await realpath(join(root, path));
    } catch {
      throw notFound(`No file '${path}' in the import folder`);
    }
    if (!real.startsWith(root + sep)) throw new FhirError(403, 'forbidden', `'${path}' is outside the import folder`);
    if (!(await stat(real)).isFile()) throw badRequest(`'${path}' is not a file`);
    return real;
  }

  async function view(job: ImportJob): Promise<Record<string, unknown>> {
    const progress = await importLog.progress(deps.repo.executor, job);
    return {
      id: job.id,
      format: job.format,
      ...(job.source && { source: job.source }),
      state: job.state,
      ...progress,
      rate: Math.round(progress.rate),
      ...(progress.eta !== undefined && { eta: Math.round(progress.eta) }),
      createdAt: job.createdAt,
      ...(job.finishedAt && { finishedAt: job.finishedAt }),
      ...(job.outcome && { outcome: job.outcome }),
    };
  }

  return r;
}
