import { generateKeyPair, SignJWT, type KeyLike } from 'jose';
import request from 'supertest';
import { openIngestHarness, type IngestHarness } from '../support/ingest';
import { OFFICE, TEST_AUDIENCE, TEST_ISSUER, testSigningKey, tokenFor } from '../support/auth';

/** A token shaped like the gateway's own, signed by `key`, with `claims` overriding. */
async function forged(key: KeyLike, alg: string, claims: { iss?: string; sub?: string; facility?: string; exp?: number | string } = {}): Promise<string> {
  return new SignJWT({ facility: claims.facility ?? 'city-hospital', scope: 'system/*.cruds' })
    .setProtectedHeader({ alg, typ: 'at+jwt' })
    .setIssuer(claims.iss ?? TEST_ISSUER)
    .setSubject(claims.sub ?? 'city-hospital-his')
    .setAudience(TEST_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? '5m')
    .sign(key);
}

describe('bearer tokens on FHIR, ingest and admin (PostgreSQL, Redis)', () => {
  let h: IngestHarness;
  const bad: [string, string | undefined][] = [];
  beforeAll(async () => {
    h = await openIngestHarness('postgres');
    const ours = await testSigningKey();
    const { privateKey: stranger } = await generateKeyPair('ES256');
    bad.push(
      ['no Authorization header', undefined],
      ['not a bearer', 'Basic Y2l0eTpzZWNyZXQ='],
      ['malformed token', 'Bearer not-a-jwt'],
      ['expired', `Bearer ${await forged(ours.privateKey, ours.alg, { exp: Math.floor(Date.now() / 1000) - 60 })}`],
      ['signed by another key', `Bearer ${await forged(stranger, 'ES256')}`],
      ['from another issuer', `Bearer ${await forged(ours.privateKey, ours.alg, { iss: 'https://idp.elsewhere.example' })}`],
      ['for a client no longer registered', `Bearer ${await forged(ours.privateKey, ours.alg, { sub: 'retired-his' })}`],
      ['claiming another facility than its client', `Bearer ${await forged(ours.privateKey, ours.alg, { facility: OFFICE })}`],
    );
  });
  afterAll(() => h.close());

  it.each([
    ['GET', '/fhir/Patient'],
    ['GET', '/fhir/Patient/p1/$everything'],
    ['POST', '/fhir'],
    ['POST', '/ingest/hl7v2'],
    ['GET', '/ingest/quality'],
    ['GET', '/admin/queues'],
    // No imports router yet: the guard on the prefix already holds for it.
    ['POST', '/imports'],
  ])('%s %s answers 401 with a Bearer challenge and an OperationOutcome (login), never echoing the token', async (method, path) => {
    for (const [why, authorization] of bad) {
      const req = method === 'GET' ? request(h.app).get(path) : request(h.app).post(path).set('Content-Type', 'application/fhir+json').send('{}');
      const res = await (authorization ? req.set('Authorization', authorization) : req);
      expect([why, res.status]).toEqual([why, 401]);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="fhir"/);
      expect(res.body.issue[0].code).toBe('login');
      if (authorization) expect(res.text).not.toContain(authorization.slice(7));
    }
  });

  it('leaves /fhir/metadata, /auth/token and the SMART configuration open', async () => {
    const cs = await request(h.app).get('/fhir/metadata').expect(200);
    expect(cs.body.rest[0].security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    expect(cs.body.rest[0].security.extension[0].extension).toEqual([{ url: 'token', valueUri: `${TEST_ISSUER}/auth/token` }]);
    await request(h.app).get('/.well-known/smart-configuration').expect(200);
    expect((await request(h.app).post('/auth/token').type('form').send({ grant_type: 'client_credentials' }).expect(401)).body.error).toBe('invalid_client');
  });

  it('the queue dashboard is for the office; a facility token is refused with 403', async () => {
    const office = await tokenFor(h.app, OFFICE);
    const board = await request(h.app).get('/admin/queues').set('Authorization', `Bearer ${office}`).expect(200);
    expect(board.text).toContain('<html');
    const city = await tokenFor(h.app, 'city-hospital');
    const refused = await request(h.app).get('/admin/queues').set('Authorization', `Bearer ${city}`).expect(403);
    expect(refused.body.issue[0].code).toBe('forbidden');
  });

  it('a valid token passes, and X-Break-Glass must carry a reason', async () => {
    const city = `Bearer ${await tokenFor(h.app, 'city-hospital')}`;
    await request(h.app).get('/fhir/Patient').set('Authorization', city).expect(200);
    await request(h.app).get('/fhir/Patient').set('Authorization', city).set('X-Break-Glass', encodeURIComponent('急诊抢救 emergency resuscitation')).expect(200);
    const empty = await request(h.app).get('/fhir/Patient').set('Authorization', city).set('X-Break-Glass', '  ').expect(400);
    expect(empty.body.issue[0].expression).toEqual(['X-Break-Glass']);
  });
});
