import { randomUUID } from 'node:crypto';
import { exportJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import type { Client } from './clients';
import type { Scope } from './principal';
import { formatScopes } from './scopes';
import type { SigningKey } from './signing-key';

/** How many verified tokens are remembered: about one per active client is enough. */
const VERIFIED_TOKENS_KEPT = 10_000;

/** What the gateway's own access tokens say beyond the registered claims. */
export interface AccessClaims {
  clientId: string;
  facility: string;
  scope: string;
}

/**
 * The gateway's access tokens: short-lived JWTs naming the client (`sub`), its facility and
 * the granted scope, for the FHIR base (`aud`), so any gateway process holding the key can
 * check them without shared session state.
 */
export class AccessTokens {
  constructor(
    private readonly key: SigningKey,
    readonly issuer: string,
    private readonly audience: string,
    readonly ttlSeconds: number,
  ) {}

  issue(client: Client, scopes: Scope[]): Promise<string> {
    return new SignJWT({ facility: client.facility, scope: formatScopes(scopes), client_id: client.clientId })
      .setProtectedHeader({ alg: this.key.alg, kid: this.key.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setSubject(client.clientId)
      .setAudience(this.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
  }

  /**
   * Tokens already verified, until they expire: a client sends the same token for minutes, and
   * checking its signature again each time is a tenth of a millisecond per request for nothing.
   * What a token says cannot change; whether its client is still registered is checked by the
   * caller on every request.
   */
  private readonly verified = new Map<string, { claims: AccessClaims; expiresAt: number }>();

  /** Throws (a jose error) unless the token is ours, unexpired and well formed. */
  async verify(token: string): Promise<AccessClaims> {
    const known = this.verified.get(token);
    if (known && known.expiresAt > Date.now()) return known.claims;
    if (known) this.verified.delete(token);
    const { payload } = await jwtVerify(token, this.key.publicKey, {
      issuer: this.issuer,
      audience: this.audience,
      algorithms: [this.key.alg],
      typ: 'at+jwt',
      requiredClaims: ['sub', 'exp'],
    });
    if (typeof payload.facility !== 'string' || typeof payload.scope !== 'string') throw new Error('token lacks facility or scope');
    const claims = { clientId: payload.sub!, facility: payload.facility, scope: payload.scope };
    // Oldest first out: a Map iterates in insertion order.
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { claims, expiresAt: payload.exp! * 1000 });
    return claims;
  }

  /** The public key, for `/auth/jwks`: other services may check the gateway's tokens. */
  async publicJwks(): Promise<{ keys: JWK[] }> {
    return { keys: [{ ...(await exportJWK(this.key.publicKey)), kid: this.key.kid, alg: this.key.alg, use: 'sig' }] };
  }
}
