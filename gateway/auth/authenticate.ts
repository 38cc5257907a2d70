import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { decodeJwt } from 'jose';
import { outcome } from '../../store/errors';
import type { AccessTokens } from './access-tokens';
import type { ClientRegistry } from './clients';
import type { Principal } from './principal';
import { parseScope } from './scopes';
import type { UserTokens } from './user-tokens';

export interface AuthenticateDeps {
  tokens: AccessTokens;
  clients: ClientRegistry;
  /** Clinicians' tokens from the OpenID Connect provider, when one is configured. */
  users?: UserTokens;
  /** The consortium office's facility id: its callers are unrestricted. */
  officeFacility: string;
}

export const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i;
const MAX_BREAK_GLASS = 500;

/**
 * Sets `res.locals.principal` from the bearer token: the gateway's own (a facility's
 * client) or, when configured, the OpenID Connect provider's (a clinician at a facility).
 * Anything else is a 401 OperationOutcome (code `login`) that never repeats the token.
 */
export function authenticate(deps: AuthenticateDeps): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    if (!header) return unauthorized(res, 'This endpoint needs a bearer token (POST /auth/token)');
    const token = BEARER.exec(header.trim())?.[1];
    if (!token) return unauthorized(res, 'The Authorization header must be "Bearer <token>"', 'invalid_request');
    let principal: Principal;
    try {
      principal = await verifyToken(deps, token);
    } catch {
      return unauthorized(res, 'The bearer token is invalid, expired or not from an issuer this gateway trusts', 'invalid_token');
    }
    const breakGlass = req.get('x-break-glass');
    if (breakGlass !== undefined) {
      const reason = breakGlassReason(breakGlass);
      if (!reason) {
        res.status(400).type('application/fhir+json; charset=utf-8').send(
          JSON.stringify(outcome([{ severity: 'error', code: 'required', diagnostics: `X-Break-Glass must give the reason, in 1 to ${MAX_BREAK_GLASS} characters`, expression: ['X-Break-Glass'] }])),
        );
        return;
      }
      principal.access.breakGlass = reason;
    }
    res.locals.principal = principal;
    next();
  };
}

/** The principal a bearer token stands for; throws when it is invalid, expired or from an issuer not trusted. */
export async function verifyToken(deps: AuthenticateDeps, token: string): Promise<Principal> {
  const iss = decodeJwt(token).iss;
  if (iss === deps.tokens.issuer) {
    const claims = await deps.tokens.verify(token);
    const client = deps.clients.get(claims.clientId);
    // A client removed from the registry, or moved, loses its tokens at once.
    if (!client || client.facility !== claims.facility) throw new Error('client no longer registered');
    return principal(deps, claims.clientId, claims.facility, claims.scope);
  }
  if (deps.users && iss === deps.users.issuer) {
    const claims = await deps.users.verify(token);
    if (!deps.clients.facilities.has(claims.facility)) throw new Error('unknown facility');
    return { ...principal(deps, claims.clientId, claims.facility, claims.scope), user: { fhirUser: claims.fhirUser, ...(claims.name ? { name: claims.name } : {}) } };
  }
  throw new Error('untrusted issuer');
}

function principal(deps: AuthenticateDeps, clientId: string, facility: string, scope: string): Principal {
  // A user token's scope also carries openid, profile, fhirUser...: only resource scopes count.
  const scopes = scope.split(/\s+/).flatMap((s) => parseScope(s) ?? []);
  const access = facility === deps.officeFacility ? { facility, unrestricted: true } : { facility };
  return { clientId, facility, scopes, access };
}

/**
 * The reason in an X-Break-Glass header, or undefined when there is none worth the name. A
 * header cannot carry Chinese text as is, so clients percent-encode it (UTF-8).
 */
export function breakGlassReason(header: string): string | undefined {
  let text = header;
  try {
    text = decodeURIComponent(header);
  } catch {
    // Not percent-encoded: taken as sent.
  }
  const reason = text.trim();
  return reason && reason.length <= MAX_BREAK_GLASS ? reason : undefined;
}

function unauthorized(res: Response, diagnostics: string, error?: string): void {
  res.set('WWW-Authenticate', error ? `Bearer realm="fhir", error="${error}"` : 'Bearer realm="fhir"');
  res.status(401).type('application/fhir+json; charset=utf-8').send(JSON.stringify(outcome([{ severity: 'error', code: 'login', diagnostics }])));
}
