import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify, SignJWT } from 'jose';
import { memoryReplayGuard } from '../../gateway/auth/replay';
import { generateSigningKey, persistentSigningKey, signingKeyFromJwk } from '../../gateway/auth/signing-key';

describe('the token signing key', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'auth-key-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is generated once under DATA_DIR/auth with mode 0600, and a restart reads the same key', async () => {
    const first = await persistentSigningKey(join(dir, 'auth'));
    expect(statSync(join(dir, 'auth', 'signing-key.json')).mode & 0o777).toBe(0o600);
    const token = await new SignJWT({}).setProtectedHeader({ alg: first.alg }).setExpirationTime('1m').sign(first.privateKey);
    const again = await persistentSigningKey(join(dir, 'auth'));
    expect(again.kid).toBe(first.kid);
    await expect(jwtVerify(token, again.publicKey)).resolves.toBeDefined();
  });

  it('comes from AUTH_SIGNING_KEY as a private JWK, which must have its private part', async () => {
    const { jwk } = await generateSigningKey();
    const key = await signingKeyFromJwk(jwk);
    expect(key.alg).toBe('ES256');
    const { d: _d, ...publicOnly } = jwk;
    await expect(signingKeyFromJwk(publicOnly)).rejects.toThrow('no private part');
    await expect(signingKeyFromJwk({ kty: 'oct', k: 'c2VjcmV0' })).rejects.toThrow('unsupported key type');
  });
});

describe('the in-memory replay guard', () => {
  it('refuses a jti until it expires, then forgets it', async () => {
    let now = 1_000_000;
    const guard = memoryReplayGuard(() => now);
    expect(await guard.firstUse('c:j1', now + 1000)).toBe(true);
    expect(await guard.firstUse('c:j1', now + 1000)).toBe(false);
    now += 1001;
    expect(await guard.firstUse('c:j1', now + 1000)).toBe(true);
  });
});
