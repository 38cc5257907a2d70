import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';

export interface OidcOptions {
  /** `iss` of the external OpenID Connect provider's tokens (OIDC_ISSUER). */
  issuer: string;
  /** Its JWK Set (OIDC_JWKS_URL). */
  jwksUrl: string;
  /** Required `aud`, when set (OIDC_AUDIENCE). */
  audience?: string;
  /** The claim naming the clinician's facility (OIDC_FACILITY_CLAIM, default `facility`). */
  facilityClaim: string;
}

export interface UserClaims {
  clientId: string;
  facility: string;
  scope: string;
  fhirUser: string;
  name?: string;
}

/**
 * Checks clinicians' tokens from the consortium's OpenID Connect provider: signed by a key
 * of its JWK Set (fetched and cached by jose), from its issuer, naming the clinician
 * (`fhirUser`), a facility and a scope.
 */
export class UserTokens {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly opts: OidcOptions) {
    this.keys = createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
  }

  get issuer(): string {
    return this.opts.issuer;
  }

  async verify(token: string): Promise<UserClaims> {
    const { payload } = await jwtVerify(token, this.keys, {
      issuer: this.opts.issuer,
      audience: this.opts.audience,
      algorithms: ['RS256', 'RS384', 'ES256', 'ES384', 'PS256', 'EdDSA'],
      requiredClaims: ['sub', 'exp'],
    });
    const facility = payload[this.opts.facilityClaim];
    const { fhirUser, scope, name } = payload as Record<string, unknown>;
    if (typeof fhirUser !== 'string' || !/^(Practitioner|PractitionerRole)\/[A-Za-z0-9.-]{1,64}$/.test(fhirUser)) throw new Error('fhirUser is missing or not a Practitioner reference');
    if (typeof facility !== 'string' || !facility) throw new Error(`claim ${this.opts.facilityClaim} is missing`);
    if (typeof scope !== 'string') throw new Error('scope is missing');
    const clientId = typeof payload.azp === 'string' ? payload.azp : typeof payload.client_id === 'string' ? payload.client_id : payload.sub!;
    return { clientId, facility, scope, fhirUser, ...(typeof name === 'string' ? { name } : {}) };
  }
}
