import { AccessTokens } from '../../gateway/auth/access-tokens';
import type { Client } from '../../gateway/auth/clients';
import { parseScope } from '../../gateway/auth/scopes';
import { testSigningKey } from '../support/auth';

const client: Client = { clientId: 'city-hospital-his', facility: 'city-hospital', scope: 'system/*.rs', scopes: [parseScope('system/*.rs')!] };

describe('access token verification, remembered until expiry', () => {
  it('answers a token it has verified from memory, and refuses it once expired', async () => {
    const tokens = new AccessTokens(await testSigningKey(), 'http://gateway.test', 'http://gateway.test/fhir', 1);
    const token = await tokens.issue(client, client.scopes);
    await expect(tokens.verify(token)).resolves.toEqual({ clientId: 'city-hospital-his', facility: 'city-hospital', scope: 'system/*.rs' });
    await expect(tokens.verify(token)).resolves.toMatchObject({ facility: 'city-hospital' });
    // exp has a one-second grain: past the next whole second plus one, the token is surely expired.
    await new Promise((r) => setTimeout(r, 2100));
    await expect(tokens.verify(token)).rejects.toThrow();
  });

  it('does not let a token altered after a verification ride on it', async () => {
    const tokens = new AccessTokens(await testSigningKey(), 'http://gateway.test', 'http://gateway.test/fhir', 300);
    const token = await tokens.issue(client, client.scopes);
    await tokens.verify(token);
    const [h, p, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = [h, Buffer.from(JSON.stringify({ ...claims, facility: 'county-hospital' })).toString('base64url'), sig].join('.');
    await expect(tokens.verify(forged)).rejects.toThrow();
  });
});
