import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Writable } from 'node:stream';
import type { OperationOutcome } from '@medplum/fhirtypes';
import express, { type Express } from 'express';
import Redis from 'ioredis';
import request from 'supertest';
import { queueBoard } from '../../gateway/admin';
import { createApp, errorHandler } from '../../gateway/app';
import { asOffice } from '../support/auth';
import { applyServerTimeouts, requestTimeout, securityHeaders } from '../../gateway/hardening';
import { rateLimit } from '../../gateway/rate-limit';
import { createLogger } from '../../gateway/logger';
import { auditQueue } from '../../workers/audit';
import { redisConnection } from '../../workers/queues';
import { REDIS_URL, silent } from '../support/ingest';
import { openTestStore, type TestStore } from '../support/stores';

const FHIR = 'application/fhir+json';
/** A synthetic resident ID number (valid check digit, belonging to no one). */
const ID_NUMBER = '11010519491231002X';
const NO_ID = /[0-9]{17}[0-9Xx]/;

/** A logger with the gateway's options that writes into `lines`. */
function capturingLogger(lines: string[]) {
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger(stream);
  log.level = 'debug';
  return log;
}

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore('pglite');
});
afterAll(() => store.close());

describe('security headers', () => {
  let queue: ReturnType<typeof auditQueue>;
  let app: Express;
  beforeAll(() => {
    queue = auditQueue(redisConnection(REDIS_URL), `{test-hdr-${randomBytes(4).toString('hex')}}`);
    app = express();
    app.use(securityHeaders('/admin/queues'));
    app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
    app.use('/admin/queues', queueBoard([queue], '/admin/queues'));
    app.use(asOffice(), createApp({ repo: store.repo }));
  });
  afterAll(() => queue.close());

  it('every API answer, errors included, carries helmet headers and a policy that allows nothing', async () => {
    for (const res of [await request(app).get('/fhir/metadata').expect(200), await request(app).get('/fhir/Nope/1').expect(404), await request(app).get('/healthz').expect(200)]) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('Bull Board still renders: its page and every script and stylesheet it names load under its policy', async () => {
    const page = await request(app).get('/admin/queues').expect(200);
    const csp = page.headers['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).not.toContain('upgrade-insecure-requests');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]).filter((u) => !u.startsWith('http'));
    expect(assets.length).toBeGreaterThan(1);
    // No inline script a policy without 'unsafe-inline' would block (JSON data blocks do not run).
    expect([...page.text.matchAll(/<script(?![^>]*\bsrc=)([^>]*)>/g)].every((m) => /type="application\/json"/.test(m[1]))).toBe(true);
    for (const asset of assets) {
      const url = asset.startsWith('/') ? asset : `/admin/queues/${asset}`;
      await request(app).get(url).expect(200);
    }
  });
});

describe('limits', () => {
  it('a body over MAX_BODY_BYTES is a 413 OperationOutcome', async () => {
    const app = express().use(asOffice(), createApp({ repo: store.repo, maxBodyBytes: 1000 }));
    const big = { resourceType: 'Patient', text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(2000)}</div>` } };
    const res = await request(app).post('/fhir/Patient').set('Content-Type', FHIR).send(big).expect(413);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('too-costly');
    expect(res.body.issue[0].diagnostics).toContain('1000 bytes');
    await request(app).post('/fhir/Patient').set('Content-Type', FHIR).send({ resourceType: 'Patient', gender: 'male' }).expect(201);
  });

  it('a handler that hangs is answered 503 timeout, and its late failure is dropped', async () => {
    const app = express();
    app.use(requestTimeout(300));
    let release: () => void = () => undefined;
    app.get('/fhir/hang', async (_req, res) => {
      await new Promise<void>((r) => (release = r));
      res.json({ late: true });
    });
    app.use(asOffice(), createApp({ repo: store.repo }));
    const started = Date.now();
    const res = await request(app).get('/fhir/hang').expect(503);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((res.body as OperationOutcome).issue[0].code).toBe('timeout');
    release();
    await new Promise((r) => setTimeout(r, 50));
    await request(app).get('/fhir/metadata').expect(200);
  });

  it('the HTTP server limits receiving a request to the same time', () => {
    const server = createServer();
    applyServerTimeouts(server, 45_000);
    expect(server.requestTimeout).toBe(45_000);
    expect(server.headersTimeout).toBe(45_000);
    applyServerTimeouts(server, 120_000);
    expect(server.headersTimeout).toBe(60_000);
  });
});

describe('rate limit (Redis)', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    await redis.connect();
  });
  afterAll(() => redis.quit());

  const limitedApp = (client: Redis, perMinute: number, log = silent, keyPrefix = `{test-rl-${randomBytes(4).toString('hex')}}`): Express => {
    const app = express();
    app.use((req, res, next) => {
      if (req.get('X-Test-Client')) res.locals.principal = { clientId: req.get('X-Test-Client'), facility: 'f', scopes: [{ context: 'system', type: '*', interactions: 'cruds' }], access: { unrestricted: true } };
      next();
    });
    app.use(createApp({ repo: store.repo, rateLimit: rateLimit({ redis: client, perMinute, keyPrefix, log, syncMs: 20 }) }));
    return app;
  };
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));
  // Counts start again each clock minute: a test that crossed one would see its count reset.
  const clearOfMinuteEdge = async (): Promise<void> => {
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 5000) await new Promise((r) => setTimeout(r, left + 10));
  };

  it('a client over its limit gets 429 OperationOutcome with Retry-After; other clients do not', async () => {
    await clearOfMinuteEdge();
    const app = limitedApp(redis, 3);
    for (let i = 0; i < 3; i++) await request(app).get('/fhir/metadata').set('X-Test-Client', 'busy').expect(200);
    const res = await request(app).get('/fhir/metadata').set('X-Test-Client', 'busy').expect(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('throttled');
    await request(app).get('/fhir/metadata').set('X-Test-Client', 'quiet').expect(200);
    // Without a principal the remote address is the key: a budget of its own.
    await request(app).get('/fhir/metadata').expect(200);
  });

  it('processes sharing a Redis share each client\'s count: what one admitted, another refuses', async () => {
    await clearOfMinuteEdge();
    const keyPrefix = `{test-rl-${randomBytes(4).toString('hex')}}`;
    const [a, b] = [limitedApp(redis, 10, silent, keyPrefix), limitedApp(redis, 10, silent, keyPrefix)];
    for (let i = 0; i < 6; i++) await request(a).get('/fhir/metadata').set('X-Test-Client', 'shared').expect(200);
    await settle();
    // b learns the shared count at its first sync.
    await request(b).get('/fhir/metadata').set('X-Test-Client', 'shared').expect(200);
    await settle();
    for (let i = 0; i < 3; i++) await request(b).get('/fhir/metadata').set('X-Test-Client', 'shared').expect(200);
    await request(b).get('/fhir/metadata').set('X-Test-Client', 'shared').expect(429);
    await settle();
    await request(a).get('/fhir/metadata').set('X-Test-Client', 'shared').expect(200);
    await settle();
    await request(a).get('/fhir/metadata').set('X-Test-Client', 'shared').expect(429);
    // The shared count is in Redis, under the prefix.
    const keys = await redis.keys(`${keyPrefix}:rate:client:shared:*`);
    expect(keys).toHaveLength(1);
    expect(Number(await redis.get(keys[0]))).toBe(11);
  });

  it('with Redis unreachable each process still holds its clients to the limit, and warns once', async () => {
    const lines: string[] = [];
    const dead = new Redis({ host: '127.0.0.1', port: 1, enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
    dead.on('error', () => undefined);
    await clearOfMinuteEdge();
    const app = limitedApp(dead, 3, capturingLogger(lines));
    for (let i = 0; i < 3; i++) {
      await request(app).get('/fhir/metadata').set('X-Test-Client', 'c').expect(200);
      await settle();
    }
    await request(app).get('/fhir/metadata').set('X-Test-Client', 'c').expect(429);
    await request(app).get('/fhir/metadata').set('X-Test-Client', 'other').expect(200);
    await settle();
    expect(lines.filter((l) => l.includes('Redis unavailable'))).toHaveLength(1);
    dead.disconnect();
  });
});

describe('no stack traces, no ID numbers, in answers or logs', () => {
  it('provoked errors answer without a stack or the ID number, and log neither', async () => {
    const lines: string[] = [];
    const log = capturingLogger(lines);
    const onError = (err: unknown): void => log.error({ err }, 'unexpected error while handling a request');
    // As main builds it: routes outside the FHIR app, then the same error handler last.
    const app = express();
    app.get('/metrics', () => {
      throw new Error(`lookup failed for ${ID_NUMBER}`);
    });
    app.use(asOffice(), createApp({ repo: store.repo, onError }));
    app.use(errorHandler(onError));

    const answers = [
      await request(app).get('/metrics').expect(500),
      // The JSON parser's message quotes the body it failed on.
      await request(app).post('/fhir/Patient').set('Content-Type', FHIR).send(`{"identifier":[{"value":"${ID_NUMBER}"}],}`).expect(400),
      await request(app).get(`/fhir/Patient/_history?_since=${ID_NUMBER}`).expect(400),
      await request(app).get(`/fhir/Patient/${ID_NUMBER}`).expect(404),
    ];
    for (const res of answers) {
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.text).not.toMatch(NO_ID);
      expect(res.text).not.toMatch(/\bat .+:\d+:\d+/);
      expect(res.text).not.toContain('stack');
    }
    // The masked forms still say where the problem was.
    expect(answers[2].body.issue[0].diagnostics).toContain('[id number]');

    log.info({ url: `/fhir/Patient?identifier=${ID_NUMBER}`, nested: { value: ID_NUMBER } }, `searched for ${ID_NUMBER}`);
    log.warn({ err: new Error(`driver said ${ID_NUMBER}`) }, 'warned');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.some((l) => l.includes('unexpected error while handling a request') && l.includes('lookup failed for [id number]'))).toBe(true);
    for (const line of lines) {
      expect(line).not.toMatch(NO_ID);
      expect(line).not.toContain('"stack"');
      expect(line).not.toMatch(/\bat .+:\d+:\d+/);
    }
  });
});
