import type { RequestHandler, Router } from 'express';
import { AccessTokens } from './access-tokens';
import { authenticate, verifyToken } from './authenticate';
import type { Principal } from './principal';
import type { ClientRegistry } from './clients';
import type { ReplayGuard } from './replay';
import type { SigningKey } from './signing-key';
import { tokenRouter } from './token-endpoint';
import { UserTokens, type OidcOptions } from './user-tokens';

export interface AuthOptions {
  clients: ClientRegistry;
  signingKey: SigningKey;
  /** `iss` of the gateway's tokens: its public origin; the token endpoint is `<issuer>/auth/token`. */
  issuer: string;
  /** `aud` of the gateway's tokens: the FHIR base. */
  audience: string;
  tokenTtlSeconds: number;
  officeFacility: string;
  replay: ReplayGuard;
  oidc?: OidcOptions;
}

/** Authentication, as the app mounts it: the token endpoints, and the middleware guarding the rest. */
export interface Auth {
  router: Router;
  authenticate: RequestHandler;
  /** What `authenticate` does for a token that does not come in an HTTP request's middleware chain (a websocket's upgrade). */
  verify(token: string): Promise<Principal>;
  tokenUrl: string;
}

export function createAuth(opts: AuthOptions): Auth {
  const issuer = opts.issuer.replace(/\/+$/, '');
  const tokens = new AccessTokens(opts.signingKey, issuer, opts.audience, opts.tokenTtlSeconds);
  const tokenUrl = `${issuer}/auth/token`;
  const deps = { tokens, clients: opts.clients, officeFacility: opts.officeFacility, users: opts.oidc && new UserTokens(opts.oidc) };
  return {
    tokenUrl,
    router: tokenRouter({ tokens, clients: opts.clients, tokenUrl, replay: opts.replay }),
    authenticate: authenticate(deps),
    verify: (token) => verifyToken(deps, token),
  };
}
