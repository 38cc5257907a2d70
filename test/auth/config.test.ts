import { loadConfig } from '../../gateway/config';
import { ANY_FACILITY, peerFacilities } from '../../gateway/ingest/mllp-peers';

const OWN_CLIENTS = '/etc/fhir-gateway/clients.json';

describe('access control configuration', () => {
  it('has safe defaults: demo clients, 300 s tokens, the office, public metrics, issuer from BASE_URL', () => {
    const c = loadConfig({ BASE_URL: 'https://fhir.consortium.example/fhir' });
    expect(c).toMatchObject({ accessTokenTtl: 300, officeFacility: 'consortium-office', metricsPublic: true, authIssuer: 'https://fhir.consortium.example' });
    expect(c.clientsFile).toMatch(/fixtures\/demo-clients\.json$/);
    expect(c.oidc).toBeUndefined();
  });

  it('refuses the demo clients (published secrets) with DEMO off', () => {
    expect(() => loadConfig({ DEMO: 'false' })).toThrow(/CLIENTS_FILE/);
    expect(loadConfig({ DEMO: 'false', CLIENTS_FILE: OWN_CLIENTS }).clientsFile).toBe(OWN_CLIENTS);
  });

  it('MLLP_PEERS: loopback for every facility only in the demo, else exactly the listed pairs', () => {
    const demo = loadConfig({}).mllpPeers;
    expect([...peerFacilities(demo, '::ffff:127.0.0.1')!]).toEqual([ANY_FACILITY]);
    expect(peerFacilities(loadConfig({ DEMO: 'false', CLIENTS_FILE: OWN_CLIENTS }).mllpPeers, '127.0.0.1')).toBeUndefined();
    const listed = loadConfig({ MLLP_PEERS: '10.1.2.3=city-hospital, 10.1.2.3=county-hospital,10.1.2.4=township-clinic' }).mllpPeers;
    expect([...peerFacilities(listed, '10.1.2.3')!]).toEqual(['city-hospital', 'county-hospital']);
    expect(peerFacilities(listed, '127.0.0.1')).toBeUndefined();
    expect(() => loadConfig({ MLLP_PEERS: 'city-hospital' })).toThrow(/MLLP_PEERS/);
  });

  it('SUBSCRIPTION_ENDPOINTS: any rest-hook in the demo, none unless listed otherwise', () => {
    expect(loadConfig({}).notify.endpoints).toBeUndefined();
    expect(loadConfig({ DEMO: 'false', CLIENTS_FILE: OWN_CLIENTS }).notify.endpoints).toEqual([]);
    expect(loadConfig({ SUBSCRIPTION_ENDPOINTS: 'https://his.a.example/hooks/, http://10.0.0.5:9000/' }).notify.endpoints).toEqual(['https://his.a.example/hooks/', 'http://10.0.0.5:9000/']);
    expect(() => loadConfig({ SUBSCRIPTION_ENDPOINTS: 'ftp://x' })).toThrow(/SUBSCRIPTION_ENDPOINTS/);
  });

  it('names the variable, and never echoes a signing key', () => {
    expect(() => loadConfig({ OIDC_ISSUER: 'https://idp.example' })).toThrow(/OIDC_ISSUER \/ OIDC_JWKS_URL/);
    expect(() => loadConfig({ ACCESS_TOKEN_TTL: '0' })).toThrow(/ACCESS_TOKEN_TTL/);
    expect(() => loadConfig({ MLLP_TLS_CERT: '/etc/gw/cert.pem' })).toThrow(/MLLP_TLS_CERT/);
    let message = '';
    try {
      loadConfig({ AUTH_SIGNING_KEY: '{"kty":"EC","x":"secret-looking-value"' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/AUTH_SIGNING_KEY/);
    expect(message).not.toContain('secret-looking-value');
  });
});
