import express, { Router, type ErrorRequestHandler, type Response } from 'express';
import type { AccessTokens } from './access-tokens';
import { ASSERTION_ALGS, AUTH_METHODS, authenticateClient, type ClientAuthDeps } from './client-auth';
import { invalidRequest, OAuthError } from './oauth-error';
import type { Scope } from './principal';
import { covers, formatScopes, parseScope } from './scopes';

export interface TokenEndpointDeps extends ClientAuthDeps {
  tokens: AccessTokens;
}

/**
 * `POST /auth/token` (SMART Backend Services: client_credentials), `GET /auth/jwks` (the
 * key the gateway's tokens are signed with) and `GET /.well-known/smart-configuration`.
 */
export function tokenRouter(deps: TokenEndpointDeps): Router {
  const r = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 20 });

  r.post('/auth/token', form, async (req, res) => {
    res.set('Cache-Control', 'no-store').set('Pragma', 'no-cache');
    try {
      if (!req.is('application/x-www-form-urlencoded')) throw invalidRequest('the body must be application/x-www-form-urlencoded');
      const params = singleValues(req.body as Record<string, unknown>);
      const client = await authenticateClient(deps, req.get('authorization'), params);
      if (!params.grant_type) throw invalidRequest('grant_type is required');
      if (params.grant_type !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'only client_credentials is supported');
      const scopes = params.scope === undefined ? client.scopes : requestedScopes(params.scope, client.scopes);
      const token = await deps.tokens.issue(client, scopes);
      res.status(200).json({ access_token: token, token_type: 'bearer', expires_in: deps.tokens.ttlSeconds, scope: formatScopes(scopes) });
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      sendOAuthError(res, err);
    }
  });

  r.get('/auth/jwks', async (_req, res) => {
    res.status(200).json(await deps.tokens.publicJwks());
  });

  r.get('/.well-known/smart-configuration', (_req, res) => {
    res.status(200).json({
      issuer: deps.tokens.issuer,
      jwks_uri: `${deps.tokens.issuer}/auth/jwks`,
      token_endpoint: deps.tokenUrl,
      token_endpoint_auth_methods_supported: AUTH_METHODS,
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS,
      grant_types_supported: ['client_credentials'],
      scopes_supported: ['system/*.cruds', 'system/*.rs', 'user/*.cruds', 'user/*.rs'],
      capabilities: ['client-confidential-symmetric', 'client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
    });
  });

  r.use('/auth/token', ((err, _req, res, next) => {
    // The form parser's own failures (too large, bad encoding) are the client's: say so the OAuth way.
    if ((err as { status?: number }).status && (err as { status: number }).status < 500) {
      res.set('Cache-Control', 'no-store');
      sendOAuthError(res, invalidRequest('the body cannot be read as a form'));
      return;
    }
    next(err);
  }) as ErrorRequestHandler);
  return r;
}

/** RFC 6749 3.1: a parameter sent twice is an error, not a choice. */
function singleValues(body: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body ?? {})) {
    if (typeof v !== 'string') throw invalidRequest(`parameter ${k} is repeated`);
    out[k] = v;
  }
  return out;
}

function requestedScopes(text: string, allowed: Scope[]): Scope[] {
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) throw new OAuthError(400, 'invalid_scope', 'scope is empty');
  return words.map((w) => {
    const s = parseScope(w);
    if (!s) throw new OAuthError(400, 'invalid_scope', `'${w.slice(0, 100)}' is not a SMART resource scope this gateway grants`);
    if (!covers(allowed, s)) throw new OAuthError(400, 'invalid_scope', `${w} is more than this client may be granted`);
    return s;
  });
}

function sendOAuthError(res: Response, err: OAuthError): void {
  if (err.challenge) res.set('WWW-Authenticate', err.challenge);
  res.status(err.status).json({ error: err.error, error_description: err.message });
}
