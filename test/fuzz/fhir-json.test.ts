import type { Server } from 'node:http';
import express from 'express';
import request from 'supertest';
import { generateConsortiumResources } from '../../fixtures/synthetic/consortium';
import { createApp } from '../../gateway/app';
import { testAuth, tokenFor } from '../support/auth';
import { createHealthRouter } from '../../gateway/health';
import { observations, patients } from '../support/fixtures';
import { fhirAnswerProblem, fuzzRng, FuzzTally, REQUEST_TIMEOUT_MS } from '../support/fuzz';
import { openIndexedStore } from '../support/mpi';
import { mutateBundle, mutateResource, type Mutant } from './mutate-json';

const CASES = Number(process.env.FUZZ_JSON_CASES ?? 800);
const FHIR = 'application/fhir+json';
const WRONG_TYPES = ['text/plain', 'application/xml', 'application/fhir+xml', 'multipart/form-data; boundary=x', 'application/json; charset=gb18030', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', ''];
const SENTINEL = { resourceType: 'Patient', id: 'fuzz-sentinel', name: [{ text: '赵伟', family: '赵', given: ['伟'] }], gender: 'male', birthDate: '1990-06-18' };

describe('fuzz: FHIR JSON writes', () => {
  let store: Awaited<ReturnType<typeof openIndexedStore>>;
  let server: Server;
  let api: request.Agent;
  const errors: string[] = [];
  beforeAll(async () => {
    store = await openIndexedStore('pglite');
    // As main mounts them: health beside the FHIR API, so a wedged process shows in /healthz.
    const app = express();
    app.use(createHealthRouter({ db: store.db, redis: { ping: async () => 'PONG' } }));
    app.use(createApp({ repo: store.repo, mpi: store.mpi, auth: await testAuth(), onError: (err) => errors.push((err as Error).message) }));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    // A facility's token: writes are held to the facility's rules as well as to the schema.
    api = request.agent(server).set('Authorization', `Bearer ${await tokenFor(app, 'city-hospital')}`);
    await api.put('/fhir/Patient/fuzz-sentinel').set('Content-Type', FHIR).send(SENTINEL).expect(201);
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  });

  it(`answers ${CASES} mutated resources and bundles with a resource, a Bundle or an OperationOutcome naming the element`, async () => {
    const rng = fuzzRng('fhir-json');
    const tally = new FuzzTally('fhir-json');
    const valid = [...patients, ...observations, ...generateConsortiumResources({ seed: 11, patients: 4, resources: 120 })] as unknown as Record<string, never>[];
    for (let i = 0; i < CASES; i++) {
      const n = tally.next();
      const original = rng.pick(valid);
      const type = String(original.resourceType);
      const kind = rng.pick(['create', 'create', 'update', 'update', 'conditional', 'bundle', 'bundle']);
      const m: Mutant = kind === 'bundle' ? mutateBundle(rng, valid) : mutateResource(rng, original);
      const id = rng.chance(0.1) ? encodeURIComponent(rng.pick(['a b', 'x'.repeat(65), '王', '..', '%00'])) : String(original.id);
      const [method, path, expected] =
        kind === 'bundle' ? ['post', '/fhir', 'Bundle'] : kind === 'create' ? ['post', `/fhir/${type}`, type] : kind === 'update' ? ['put', `/fhir/${type}/${id}`, type] : ['put', `/fhir/${type}?identifier=urn:fuzz|v1`, type];
      const contentType = rng.chance(0.05) ? rng.pick(WRONG_TYPES) : FHIR;
      const text = 'text' in (m.body as object) ? (m.body as { text: string }).text : JSON.stringify(m.body);
      const input = `${method.toUpperCase()} ${path} [${contentType}] ${m.mutation}`;
      const started = performance.now();
      try {
        const req = method === 'post' ? api.post(path) : api.put(path);
        const res = await req.set('Content-Type', contentType).send(text).timeout(REQUEST_TIMEOUT_MS).ok(() => true);
        tally.took(performance.now() - started, input);
        const problem = fhirAnswerProblem(res, expected) ?? (contentType === FHIR ? pathProblem(m, res) : undefined);
        if (problem) tally.fail(n, input, res.status >= 500 ? `${problem} (${errors.at(-1)})` : problem, res.status >= 500);
      } catch (err) {
        tally.fail(n, input, `no answer: ${(err as Error).message}`, true);
      }
    }
    expect(tally.report()).toEqual([]);
    expect(tally.cases).toBe(CASES);

    // Still alive, and what was stored before the storm is as it was.
    expect((await api.get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
    const kept = await api.get('/fhir/Patient/fuzz-sentinel').expect(200);
    expect(kept.body).toMatchObject({ ...SENTINEL, meta: { versionId: '1' } });
  });
});

/** A 400 for damage at one element must say which element. */
function pathProblem(m: Mutant, res: { status: number; body: { issue?: { expression?: string[] }[] } }): string | undefined {
  if (!m.path || res.status !== 400) return undefined;
  return res.body.issue?.[0]?.expression?.length ? undefined : `400 for ${m.mutation} names no element`;
}
