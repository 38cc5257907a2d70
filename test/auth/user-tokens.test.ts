import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import request from 'supertest';
import { startTestServer, type TestServer } from '../support/server';

const IDP = 'http://idp.consortium.test/realms/clinicians';

/** Clinicians' tokens from an OpenID Connect provider whose JWK Set a loopback server publishes. */
describe('user tokens from the OpenID Connect issuer', () => {
  let t: TestServer;
  let jwks: Server;
  let idpKey: KeyLike;
  let otherKey: KeyLike;
  let jwksRequests = 0;
  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    idpKey = privateKey;
    ({ privateKey: otherKey } = await generateKeyPair('RS256'));
    const body = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' }] });
    jwks = createServer((_req, res) => {
      jwksRequests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    }).listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/certs`;
    t = await startTestServer('pglite', { auth: { oidc: { issuer: IDP, jwksUrl, audience: 'fhir-gateway', facilityClaim: 'facility' } } });
  });
  afterAll(async () => {
    await t.close();
    await new Promise((r) => jwks.close(r));
  });

  const userToken = (claims: Record<string, unknown>, key: KeyLike = idpKey) =>
    new SignJWT({ fhirUser: 'Practitioner/dr-zhao', facility: 'community-centre-a', scope: 'openid fhirUser user/Patient.rs user/Observation.rs', azp: 'centre-ehr', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
      .setIssuer(IDP)
      .setSubject('u-1024')
      .setAudience('fhir-gateway')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key);

  it('accepts a clinician token, its resource scopes honoured and named as user/ scopes', async () => {
    const auth = `Bearer ${await userToken({})}`;
    await request(t.app).get('/fhir/Patient').set('Authorization', auth).expect(200);
    expect(jwksRequests).toBeGreaterThan(0);
    const refused = await request(t.app).post('/fhir/Patient').set('Authorization', auth).set('Content-Type', 'application/fhir+json').send({ resourceType: 'Patient' }).expect(403);
    expect(refused.body.issue[0].diagnostics).toContain('user/Patient.c');
  });

  it.each([
    ['signed by a key not in the JWK Set', {}, 'other'],
    ['without fhirUser', { fhirUser: undefined }, 'idp'],
    ['for a facility the consortium does not have', { facility: 'private-clinic-x' }, 'idp'],
    ['without a facility', { facility: undefined }, 'idp'],
  ])('refuses a user token %s with 401', async (_why, claims, signer) => {
    const token = await userToken(claims, signer === 'other' ? otherKey : idpKey);
    const res = await request(t.app).get('/fhir/Patient').set('Authorization', `Bearer ${token}`).expect(401);
    expect(res.body.issue[0].code).toBe('login');
  });
});
