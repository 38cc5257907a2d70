/**
 * The patient index over FHIR: IHE PIXm (`$ihe-pix`), `$match`, and the consortium office's
 * operations (links, review queue, link/unlink, merge/unmerge). Handlers translate HTTP to
 * PatientIndex calls; the decisions live in mpi/.
 */
import { Router, type Request, type Response } from 'express';
import type { Identifier, Parameters, ParametersParameter, Patient } from '@medplum/fhirtypes';
import type { PatientIndex } from '../../mpi';
import { featuresOf } from '../../mpi/features';
import { badRequest, notFound } from '../../store/errors';
import type { Repository } from '../../store/repository';
import { operatorName, requireOffice, requireScope, storeFor } from '../auth/require';
import { parametersBody, stringParam } from './params';
import { fullUrl, renderBundle } from './render';
import { sendJson } from './routes';

const MATCH_GRADE = 'http://hl7.org/fhir/StructureDefinition/match-grade';

export function patientIndexRouter(repo: Repository, mpi: PatientIndex, configuredBase?: string): Router {
  const r = Router();
  const base = (req: Request): string => configuredBase ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`;
  const store = (res: Response): Repository => storeFor(repo, res);
  // The office's decisions are recorded under the authenticated caller, never a header's claim.
  const office = (res: Response, operation: string): string => operatorName(requireOffice(res, operation));

  r.get('/Patient/\\$ihe-pix', async (req, res) => {
    requireScope(res, 'Patient', 'r', 's');
    const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const source = query.get('sourceIdentifier');
    const m = source ? /^([^|]+)\|(.+)$/.exec(source) : null;
    if (!m) throw badRequest(`sourceIdentifier must be system|value, got '${source ?? ''}'`, ['sourceIdentifier']);
    const targets = query.getAll('targetSystem').flatMap((t) => t.split(',')).filter(Boolean);
    const found = await store(res).search('Patient', [['identifier', source!]], {}, 50);
    const persons = new Map<string, string[]>();
    for (const p of found.matches) {
      const person = await mpi.person(repo.executor, p.id);
      if (person) persons.set(person.goldenId, person.members);
    }
    if (persons.size === 0) throw notFound(`sourceIdentifier ${m[1]}|… is not known to the patient index`);
    const ids = [...persons.entries()].flatMap(([golden, members]) => [golden, ...members]);
    const patients = (await store(res).search('Patient', [['_id', ids.join(',')]], {}, ids.length)).matches.map((s) => s.resource as Patient & { id: string });
    const parameter: ParametersParameter[] = [];
    const seen = new Set<string>([`${m[1]}|${m[2]}`]);
    for (const p of patients) {
      const identifiers = (p.identifier ?? []).filter((i: Identifier) => i.system && i.value && (targets.length === 0 || targets.includes(i.system)));
      for (const i of identifiers) {
        const key = `${i.system}|${i.value}`;
        if (seen.has(key)) continue;
        seen.add(key);
        parameter.push({ name: 'targetIdentifier', valueIdentifier: { use: i.use, system: i.system, value: i.value } });
      }
      parameter.push({ name: 'targetId', valueReference: { reference: `Patient/${p.id}` } });
    }
    sendJson(res, 200, { resourceType: 'Parameters', parameter } satisfies Parameters);
  });

  r.post('/Patient/\\$match', async (req, res) => {
    requireScope(res, 'Patient', 'r', 's');
    const params = parametersBody(req.body, '$match');
    const patient = params.find((p) => p.name === 'resource')?.resource as Patient | undefined;
    if (patient?.resourceType !== 'Patient') throw badRequest("$match: parameter 'resource' must hold a Patient");
    const onlyCertain = params.find((p) => p.name === 'onlyCertainMatches')?.valueBoolean === true;
    const count = params.find((p) => p.name === 'count')?.valueInteger ?? 10;
    const f = featuresOf(patient);
    if (!f.nameKey && !f.idNumber && !f.birthDate && f.phones.length === 0) throw badRequest('$match needs at least a name, an ID number, a birth date or a phone');
    let scored = await mpi.match(repo.executor, patient);
    if (onlyCertain) scored = scored.filter((s) => s.verdict === 'MATCH');
    scored = scored.slice(0, count);
    const goldens = scored.length ? (await store(res).search('Patient', [['_id', scored.map((s) => s.goldenId).join(',')]], {}, scored.length)).matches : [];
    const byId = new Map(goldens.map((g) => [g.id, g]));
    const b = base(req);
    const entries = scored.flatMap((s) => {
      const g = byId.get(s.goldenId);
      if (!g) return [];
      const grade = s.verdict === 'MATCH' ? (s.rule === 'id-number' ? 'certain' : 'probable') : 'possible';
      // The score is a log2 likelihood ratio; as a probability it is 0.5 at the review threshold.
      const probability = Math.round((1 / (1 + 2 ** -(s.score - mpi.rules.thresholds.review))) * 1000) / 1000;
      return [{ fullUrl: fullUrl(b, g), json: g.json ?? undefined, search: { mode: 'match' as const, score: probability, extension: [{ url: MATCH_GRADE, valueCode: grade }] } }];
    });
    res.status(200).type('application/fhir+json; charset=utf-8').send(renderBundle({ type: 'searchset', total: entries.length }, entries));
  });

  r.get('/Patient/:id/\\$mpi-links', async (req, res) => {
    requireScope(res, 'Patient', 'r');
    const person = await mpi.person(repo.executor, req.params.id as string);
    if (!person) throw notFound(`Patient/${req.params.id} is not in the patient index`);
    const links = await mpi.linksOf(repo.executor, person.goldenId);
    sendJson(res, 200, {
      resourceType: 'Parameters',
      parameter: [
        { name: 'golden', valueReference: { reference: `Patient/${person.goldenId}` } },
        ...links.map((l) => ({
          name: 'link',
          part: [
            { name: 'patient', valueReference: { reference: `Patient/${l.patientId}` } },
            { name: 'matchResult', valueCode: 'MATCH' },
            { name: 'linkSource', valueCode: l.linkSource },
            { name: 'rule', valueString: l.rule },
            { name: 'rulesVersion', valueString: l.rulesVersion },
            ...(l.score !== null ? [{ name: 'score', valueDecimal: l.score }] : []),
            { name: 'updated', valueDateTime: l.updatedAt },
          ],
        })),
      ],
    } satisfies Parameters);
  });

  r.get('/\\$mpi-reviews', async (req, res) => {
    office(res, '$mpi-reviews');
    const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const state = query.get('state') ?? 'open';
    if (!['open', 'accepted', 'rejected'].includes(state)) throw badRequest(`state must be open, accepted or rejected, got '${state}'`, ['state']);
    const count = Math.min(Math.max(Number(query.get('_count') ?? 100) || 100, 1), 1000);
    const reviews = await mpi.reviews(repo.executor, state as 'open', count);
    sendJson(res, 200, {
      resourceType: 'Parameters',
      parameter: reviews.map((v) => ({
        name: 'review',
        part: [
          { name: 'patient', valueReference: { reference: `Patient/${v.patientId}` } },
          { name: 'golden', valueReference: { reference: `Patient/${v.goldenId}` } },
          { name: 'state', valueCode: v.state },
          ...(v.score !== null ? [{ name: 'score', valueDecimal: v.score }] : []),
          ...(v.levels ? [{ name: 'levels', valueString: JSON.stringify(v.levels) }] : []),
          { name: 'created', valueDateTime: v.createdAt },
          ...(v.decidedBy ? [{ name: 'decidedBy', valueString: v.decidedBy }] : []),
        ],
      })),
    } satisfies Parameters);
  });

  r.post('/Patient/\\$mpi-review', async (req, res) => {
    const operator = office(res, '$mpi-review');
    const params = parametersBody(req.body, '$mpi-review');
    const patient = idOf(stringParam(params, 'patient', '$mpi-review', true));
    const golden = idOf(stringParam(params, 'golden', '$mpi-review', true));
    const decision = stringParam(params, 'decision', '$mpi-review', true);
    if (decision !== 'accept' && decision !== 'reject') throw badRequest(`$mpi-review: decision must be accept or reject, got '${decision}'`);
    await repo.transaction(async (tx) => {
      if (decision === 'accept') await mpi.link(tx, patient, golden, operator, 'review-accept');
      else await mpi.reject(tx, patient, golden, operator);
    });
    await sendLinks(res, patient);
  });

  r.post('/Patient/\\$mpi-link', async (req, res) => {
    const operator = office(res, '$mpi-link');
    const params = parametersBody(req.body, '$mpi-link');
    const patient = idOf(stringParam(params, 'patient', '$mpi-link', true));
    const golden = stringParam(params, 'golden', '$mpi-link', true);
    await repo.transaction((tx) => mpi.link(tx, patient, golden, operator));
    await sendLinks(res, patient);
  });

  r.post('/Patient/\\$mpi-unlink', async (req, res) => {
    const operator = office(res, '$mpi-unlink');
    const patient = idOf(stringParam(parametersBody(req.body, '$mpi-unlink'), 'patient', '$mpi-unlink', true));
    await repo.transaction((tx) => mpi.unlink(tx, patient, operator));
    await sendLinks(res, patient);
  });

  r.post('/Patient/\\$mpi-merge', async (req, res) => {
    const operator = office(res, '$mpi-merge');
    const params = parametersBody(req.body, '$mpi-merge');
    const source = stringParam(params, 'source', '$mpi-merge', true);
    const target = stringParam(params, 'target', '$mpi-merge', true);
    const merge = await repo.transaction((tx) => mpi.merge(tx, source, target, stringParam(params, 'reason', '$mpi-merge') ?? 'office', operator));
    if (!merge) throw badRequest('$mpi-merge: source and target are already one person');
    sendJson(res, 200, {
      resourceType: 'Parameters',
      parameter: [
        { name: 'merge', valueId: merge.id },
        { name: 'source', valueReference: { reference: `Patient/${merge.sourceGolden}` } },
        { name: 'target', valueReference: { reference: `Patient/${merge.targetGolden}` } },
        ...merge.moved.map((m) => ({ name: 'moved', valueReference: { reference: `Patient/${m.patientId}` } })),
      ],
    } satisfies Parameters);
  });

  r.post('/Patient/\\$mpi-unmerge', async (req, res) => {
    const operator = office(res, '$mpi-unmerge');
    const id = stringParam(parametersBody(req.body, '$mpi-unmerge'), 'merge', '$mpi-unmerge', true);
    const merge = await repo.transaction((tx) => mpi.unmerge(tx, id, operator));
    sendJson(res, 200, {
      resourceType: 'Parameters',
      parameter: [
        { name: 'merge', valueId: merge.id },
        { name: 'restored', valueReference: { reference: `Patient/${merge.sourceGolden}` } },
      ],
    } satisfies Parameters);
  });

  async function sendLinks(res: Response, patientId: string): Promise<void> {
    const person = await mpi.person(repo.executor, patientId);
    sendJson(res, 200, {
      resourceType: 'Parameters',
      parameter: [
        { name: 'patient', valueReference: { reference: `Patient/${patientId}` } },
        { name: 'golden', valueReference: { reference: `Patient/${person!.goldenId}` } },
        ...person!.members.map((m) => ({ name: 'member', valueReference: { reference: `Patient/${m}` } })),
      ],
    } satisfies Parameters);
  }

  return r;
}

function idOf(ref: string): string {
  return ref.replace(/^Patient\//, '');
}
