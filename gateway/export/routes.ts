/**
 * FHIR Bulk Data `$export` (Bulk Data Access IG v2, R4): kick-off at the system, Patient and
 * Group levels, then status, download and cancel under `$export-status/<id>`. Handlers only
 * translate HTTP; the job lives in service.ts and run.ts.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import type { Group, OperationOutcome } from '@medplum/fhirtypes';
import { FhirError, forbidden, outcome } from '../../store/errors';
import { ID_PATTERN, type Repository } from '../../store/repository';
import { operatorName, principalOf, requireScope, storeFor } from '../auth/require';
import { selfUrl } from '../fhir/request';
import { sendJson } from '../fhir/routes';
import { streamsLong } from '../hardening';
import type { ExportJob } from './jobs';
import { parseKickoff } from './kickoff';
import type { ExportScope } from './run';
import type { ExportService } from './service';

const STATUS = '$export-status';

export function exportRouter(repo: Repository, jobs: ExportService, configuredBase?: string): Router {
  const r = Router();
  const base = (req: Request): string => configuredBase ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`;

  const owner = (res: Response): string => operatorName(principalOf(res));

  async function kickoff(req: Request, res: Response, scope: ExportScope, warnings: OperationOutcome[] = []): Promise<void> {
    const principal = principalOf(res);
    const { types, since } = parseKickoff(req, principal, scope.level);
    const b = base(req);
    const job = await jobs.start({ owner: owner(res), repo: storeFor(repo, res), scope, types, since, request: selfUrl(req, b), warnings });
    res.set('Content-Location', `${b}/${STATUS}/${job.id}`);
    sendJson(res, 202, outcome([{ severity: 'information', code: 'informational', diagnostics: `Export ${job.id} started; poll the Content-Location` }]));
  }

  // Breaking the glass is for one patient's care, not for copying everyone's records out.
  r.get(['/\\$export', '/Patient/\\$export', '/Group/:id/\\$export'], (_req, res, next) => {
    if (principalOf(res).access.breakGlass !== undefined) throw forbidden('X-Break-Glass is not accepted on $export', ['X-Break-Glass']);
    next();
  });
  r.get('/\\$export', (req, res) => kickoff(req, res, { level: 'system' }));
  r.get('/Patient/\\$export', (req, res) => kickoff(req, res, { level: 'patient' }));
  r.get('/Group/:id/\\$export', async (req, res) => {
    requireScope(res, 'Group', 'r');
    const group = (await storeFor(repo, res).read('Group', req.params.id as string)).resource as Group;
    const { patients, warnings } = groupPatients(group);
    await kickoff(req, res, { level: 'group', patients }, warnings);
  });

  r.get(`/\\${STATUS}/:id`, async (req, res) => {
    const job = await jobs.get(req.params.id as string, owner(res));
    if (job.status === 'failed') throw new FhirError(500, 'exception', job.failure ?? 'The export failed');
    if (job.status === 'in-progress') {
      res.set('X-Progress', `${job.typesDone} of ${job.types.length} types, ${job.exported} resources`);
      res.set('Retry-After', '2');
      res.status(202).end();
      return;
    }
    sendJson(res, 200, manifest(job, `${base(req)}/${STATUS}/${job.id}`));
  });

  r.delete(`/\\${STATUS}/:id`, async (req, res) => {
    await jobs.cancel(req.params.id as string, owner(res));
    sendJson(res, 202, outcome([{ severity: 'information', code: 'informational', diagnostics: `Export ${req.params.id} cancelled and its files removed` }]));
  });

  r.get(`/\\${STATUS}/:id/:file`, async (req, res) => {
    const file = await jobs.file(req.params.id as string, owner(res), req.params.file as string);
    // The token that downloads may be narrower than the one that started the export.
    if (file.type !== 'OperationOutcome') requireScope(res, file.type, 'r');
    res.status(200).type('application/fhir+ndjson');
    streamsLong(res);
    await pipeline(createReadStream(file.path), res);
  });

  return r;
}

function manifest(job: ExportJob, filesUrl: string): object {
  const entry = (f: ExportJob['output'][number]) => ({ type: f.type, url: `${filesUrl}/${f.file}`, count: f.count });
  return { transactionTime: job.transactionTime, request: job.request, requiresAccessToken: true, output: job.output.map(entry), error: job.error.map(entry) };
}

/** The Group's current Patient members; any other member is left out, and said so in the error file. */
function groupPatients(group: Group): { patients: string[]; warnings: OperationOutcome[] } {
  const patients: string[] = [];
  const warnings: OperationOutcome[] = [];
  (group.member ?? []).forEach((m, i) => {
    if (m.inactive) return;
    const id = /^Patient\/(.+)$/.exec(m.entity?.reference ?? '')?.[1];
    if (id && ID_PATTERN.test(id)) patients.push(id);
    else warnings.push(outcome([{ severity: 'warning', code: 'not-supported', diagnostics: `Group/${group.id} member ${i} is not a Patient reference and was left out`, expression: [`Group.member[${i}].entity`] }]));
  });
  return { patients, warnings };
}
