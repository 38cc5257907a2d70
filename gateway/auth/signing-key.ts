import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, type KeyLike } from 'jose';

/** The key the gateway signs its access tokens with, and the public half it checks them with. */
export interface SigningKey {
  alg: string;
  kid: string;
  privateKey: KeyLike;
  publicKey: KeyLike;
}

const ALG_FOR: Readonly<Record<string, string>> = { 'EC:P-256': 'ES256', 'EC:P-384': 'ES384', 'RSA:': 'RS256', 'OKP:Ed25519': 'EdDSA' };

/** A private JWK (from AUTH_SIGNING_KEY, or the file the gateway keeps) as a signing key. */
export async function signingKeyFromJwk(jwk: JWK): Promise<SigningKey> {
  const alg = jwk.alg ?? ALG_FOR[`${jwk.kty}:${jwk.crv ?? ''}`];
  if (!alg) throw new Error(`unsupported key type ${jwk.kty}${jwk.crv ? ` ${jwk.crv}` : ''} (use EC P-256/P-384, RSA or Ed25519)`);
  if (jwk.d === undefined) throw new Error('the JWK has no private part (d)');
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = jwk;
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwk));
  return { alg, kid, privateKey: (await importJWK(jwk, alg)) as KeyLike, publicKey: (await importJWK(publicJwk, alg)) as KeyLike };
}

export async function generateSigningKey(): Promise<{ key: SigningKey; jwk: JWK }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256' };
  return { key: await signingKeyFromJwk(jwk), jwk };
}

/**
 * The key kept in `dir/signing-key.json` (mode 0600), generated there on first start, so a
 * restart keeps issued tokens valid. Several gateway processes must share AUTH_SIGNING_KEY
 * instead: each would otherwise generate its own.
 */
export async function persistentSigningKey(dir: string): Promise<SigningKey> {
  const file = join(dir, 'signing-key.json');
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) return signingKeyFromJwk(JSON.parse(text) as JWK);
  const { key, jwk } = await generateSigningKey();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // 'wx': two processes starting at once must not both write; the loser reads the winner's.
  try {
    writeFileSync(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return persistentSigningKey(dir);
    throw err;
  }
  chmodSync(file, 0o600);
  return key;
}
