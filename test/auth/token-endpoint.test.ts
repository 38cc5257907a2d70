import { randomUUID } from 'node:crypto';
import express from 'express';
import Redis from 'ioredis';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import request from 'supertest';
import { ClientRegistry, loadClients } from '../../gateway/auth/clients';
import { redisReplayGuard } from '../../gateway/auth/replay';
import { parseScope } from '../../gateway/auth/scopes';
import { DEMO_CLIENTS_FILE } from '../../gateway/config';
import { demoClient, TEST_AUDIENCE, TEST_ISSUER, testAuth } from '../support/auth';
import { REDIS_URL } from '../support/ingest';

const TOKEN_URL = `${TEST_ISSUER}/auth/token`;
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const city = demoClient('city-hospital');

describe('POST /auth/token', () => {
  let app: express.Express;
  let clientKey: KeyLike;
  let strangerKey: KeyLike;
  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES384');
    clientKey = privateKey;
    ({ privateKey: strangerKey } = await generateKeyPair('ES384'));
    const demo = loadClients(DEMO_CLIENTS_FILE);
    const lis = { clientId: 'county-lis', facility: 'county-hospital', scope: 'system/Observation.crus', scopes: [parseScope('system/Observation.crus')!], jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES384', kid: 'lis-1' }] } };
    const clients = new ClientRegistry([...['city-hospital', 'consortium-office'].map((f) => demo.get(demoClient(f).clientId)!), lis]);
    app = express().use((await testAuth({ clients })).router);
  });

  const form = (fields: Record<string, string>) => request(app).post('/auth/token').type('form').send(fields);
  const assertion = (claims: Record<string, unknown> = {}, key: KeyLike = clientKey, exp = '4m') =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'ES384', kid: 'lis-1' })
      .setIssuer('county-lis')
      .setSubject('county-lis')
      .setAudience(TOKEN_URL)
      .setJti(randomUUID())
      .setExpirationTime(exp)
      .sign(key);
  const withAssertion = (jwt: string, extra: Record<string, string> = {}) => form({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: jwt, ...extra });

  it('client_secret_post: a bearer JWT for the facility with every allowed scope', async () => {
    const res = await form({ grant_type: 'client_credentials', client_id: city.clientId, client_secret: city.clientSecret }).expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'bearer', expires_in: 300, scope: 'system/*.cruds' });
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toMatchObject({ iss: TEST_ISSUER, sub: city.clientId, aud: TEST_AUDIENCE, facility: 'city-hospital', scope: 'system/*.cruds' });
    expect(claims.exp! - claims.iat!).toBe(300);
  });

  it('client_secret_basic, with a requested subset of the scopes (v1 names granted as v2)', async () => {
    const res = await request(app).post('/auth/token').auth(city.clientId, city.clientSecret).type('form').send({ grant_type: 'client_credentials', scope: 'system/Observation.read system/Patient.rs' }).expect(200);
    expect(res.body.scope).toBe('system/Observation.rs system/Patient.rs');
    expect(decodeJwt(res.body.access_token).scope).toBe('system/Observation.rs system/Patient.rs');
  });

  it('private_key_jwt: an assertion signed by the registered key', async () => {
    const res = await withAssertion(await assertion()).expect(200);
    expect(res.body.scope).toBe('system/Observation.crus');
    expect(decodeJwt(res.body.access_token)).toMatchObject({ sub: 'county-lis', facility: 'county-hospital' });
  });

  it('invalid_client (401) for a wrong secret, an unknown client, and Basic says how to retry', async () => {
    const wrong = await form({ grant_type: 'client_credentials', client_id: city.clientId, client_secret: `${city.clientSecret}x` }).expect(401);
    expect(wrong.body).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    expect(JSON.stringify(wrong.body)).not.toContain(city.clientSecret);
    await form({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: city.clientSecret }).expect(401);
    const basic = await request(app).post('/auth/token').auth(city.clientId, 'not-the-secret').type('form').send({ grant_type: 'client_credentials' }).expect(401);
    expect(basic.headers['www-authenticate']).toMatch(/^Basic/);
    // A client registered with keys only has no secret to guess.
    await form({ grant_type: 'client_credentials', client_id: 'county-lis', client_secret: '' }).expect(401);
    await form({ grant_type: 'client_credentials' }).expect(401);
  });

  it('invalid_client for assertions: wrong key, wrong audience, too long a life, expired, replayed jti', async () => {
    const cases: [string, string][] = [
      ['stranger key', await assertion({}, strangerKey)],
      ['lives 10 minutes', await assertion({}, clientKey, '10m')],
      ['expired', await assertion({}, clientKey, '-2m')],
      ['other audience', await new SignJWT({}).setProtectedHeader({ alg: 'ES384' }).setIssuer('county-lis').setSubject('county-lis').setAudience('https://elsewhere.example/token').setJti(randomUUID()).setExpirationTime('4m').sign(clientKey)],
      ['sub is not iss', await new SignJWT({}).setProtectedHeader({ alg: 'ES384' }).setIssuer('county-lis').setSubject('city-hospital-his').setAudience(TOKEN_URL).setJti(randomUUID()).setExpirationTime('4m').sign(clientKey)],
      ['no jti', await new SignJWT({}).setProtectedHeader({ alg: 'ES384' }).setIssuer('county-lis').setSubject('county-lis').setAudience(TOKEN_URL).setExpirationTime('4m').sign(clientKey)],
      ['not a JWT', 'not.a.jwt'],
    ];
    for (const [name, jwt] of cases) {
      const res = await withAssertion(jwt);
      expect([name, res.status, res.body.error]).toEqual([name, 401, 'invalid_client']);
    }
    const once = await assertion();
    await withAssertion(once).expect(200);
    const replay = await withAssertion(once).expect(401);
    expect(replay.body.error_description).toContain('already used');
  });

  it('invalid_scope for scopes beyond the client, unknown forms and search-parameter scopes', async () => {
    for (const scope of ['system/Patient.rs system/AuditEvent.c', 'openid', 'system/Observation.rs?category=laboratory', 'system/Observation.sr', '']) {
      const res = await withAssertion(await assertion(), { scope });
      expect([scope, res.status, res.body.error]).toEqual([scope, 400, 'invalid_scope']);
    }
    const ok = await withAssertion(await assertion(), { scope: 'system/Observation.rs' }).expect(200);
    expect(ok.body.scope).toBe('system/Observation.rs');
  });

  it('unsupported_grant_type, and invalid_request for a missing grant, two methods, JSON, or a repeated parameter', async () => {
    const base = { client_id: city.clientId, client_secret: city.clientSecret };
    expect((await form({ ...base, grant_type: 'password' }).expect(400)).body.error).toBe('unsupported_grant_type');
    expect((await form(base).expect(400)).body.error).toBe('invalid_request');
    const both = await request(app).post('/auth/token').auth(city.clientId, city.clientSecret).type('form').send({ ...base, grant_type: 'client_credentials' }).expect(400);
    expect(both.body.error).toBe('invalid_request');
    const json = await request(app).post('/auth/token').send({ ...base, grant_type: 'client_credentials' }).expect(400);
    expect(json.body.error).toBe('invalid_request');
    const repeated = await request(app).post('/auth/token').type('form').send(`grant_type=client_credentials&grant_type=client_credentials&client_id=${city.clientId}&client_secret=${city.clientSecret}`).expect(400);
    expect(repeated.body.error).toBe('invalid_request');
  });

  it('advertises the endpoint and methods at /.well-known/smart-configuration, and its key at /auth/jwks', async () => {
    const res = await request(app).get('/.well-known/smart-configuration').expect(200);
    expect(res.body).toMatchObject({ token_endpoint: TOKEN_URL, grant_types_supported: ['client_credentials'] });
    expect(res.body.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt']));
    const jwks = await request(app).get('/auth/jwks').expect(200);
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0].d).toBeUndefined();
  });
});

describe('client assertion replay across gateways sharing Redis', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterAll(() => redis.quit());

  it('an assertion used at one gateway is refused at another, and its jti expires with it', async () => {
    const prefix = `test-jti-${randomUUID()}:`;
    const guards = [redisReplayGuard(redis, prefix), redisReplayGuard(redis, prefix)];
    const exp = Date.now() + 1500;
    expect(await guards[0].firstUse('county-lis:j1', exp)).toBe(true);
    expect(await guards[1].firstUse('county-lis:j1', exp)).toBe(false);
    expect(await guards[1].firstUse('county-lis:j2', exp)).toBe(true);
    const ttl = await redis.pttl(`${prefix}county-lis:j1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1500);
  });
});
