import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { secretMatches, type Client, type ClientRegistry } from './clients';
import { invalidClient, invalidRequest } from './oauth-error';
import type { ReplayGuard } from './replay';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGS = ['RS256', 'RS384', 'ES256', 'ES384', 'PS256', 'PS384', 'EdDSA'];
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];

/** SMART Backend Services: an assertion may live at most five minutes. */
const MAX_ASSERTION_LIFETIME_S = 300;
const CLOCK_SKEW_S = 30;

export interface ClientAuthDeps {
  clients: ClientRegistry;
  /** The token endpoint's URL, the `aud` a client assertion must name. */
  tokenUrl: string;
  replay: ReplayGuard;
}

/**
 * Which registered client is asking, by exactly one of client_secret_basic,
 * client_secret_post or private_key_jwt; throws an OAuthError otherwise.
 */
export async function authenticateClient(deps: ClientAuthDeps, authorization: string | undefined, form: Record<string, string>): Promise<Client> {
  const basic = authorization !== undefined && /^basic /i.test(authorization);
  const post = form.client_secret !== undefined;
  const jwt = form.client_assertion !== undefined || form.client_assertion_type !== undefined;
  if (Number(basic) + Number(post) + Number(jwt) > 1) throw invalidRequest('use exactly one client authentication method');
  if (basic) return bySecret(deps, ...basicCredentials(authorization!, form.client_id), 'Basic realm="token"');
  if (post) {
    if (!form.client_id) throw invalidRequest('client_id is required with client_secret');
    return bySecret(deps, form.client_id, form.client_secret);
  }
  if (jwt) return byAssertion(deps, form);
  throw invalidClient('client authentication is required');
}

function basicCredentials(header: string, formClientId: string | undefined): [string, string] {
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw invalidRequest('the Basic credentials must be client_id:client_secret');
  let id: string;
  let secret: string;
  try {
    // RFC 6749 2.3.1: both halves are form-urlencoded before being joined.
    id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } catch {
    throw invalidRequest('the Basic credentials are not form-urlencoded');
  }
  if (formClientId !== undefined && formClientId !== id) throw invalidRequest('client_id differs from the one in the Authorization header');
  return [id, secret];
}

function bySecret(deps: ClientAuthDeps, clientId: string, secret: string, challenge?: string): Client {
  const client = deps.clients.get(clientId);
  if (!secretMatches(client, secret)) throw invalidClient('unknown client or wrong secret', challenge);
  return client!;
}

async function byAssertion(deps: ClientAuthDeps, form: Record<string, string>): Promise<Client> {
  if (form.client_assertion_type !== JWT_BEARER) throw invalidRequest(`client_assertion_type must be ${JWT_BEARER}`);
  if (!form.client_assertion) throw invalidRequest('client_assertion is required');
  let iss: unknown;
  try {
    iss = decodeJwt(form.client_assertion).iss;
  } catch {
    throw invalidClient('client_assertion is not a JWT');
  }
  const client = typeof iss === 'string' ? deps.clients.get(iss) : undefined;
  if (!client?.jwks) throw invalidClient('the assertion names no client registered for private_key_jwt');
  if (form.client_id !== undefined && form.client_id !== client.clientId) throw invalidRequest('client_id differs from the assertion issuer');
  let payload;
  try {
    ({ payload } = await jwtVerify(form.client_assertion, createLocalJWKSet(client.jwks), {
      issuer: client.clientId,
      subject: client.clientId,
      audience: deps.tokenUrl,
      algorithms: ASSERTION_ALGS,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: CLOCK_SKEW_S,
    }));
  } catch (err) {
    throw invalidClient(`client_assertion rejected: ${assertionProblem(err)}`);
  }
  const exp = payload.exp!;
  if (exp - Date.now() / 1000 > MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S) throw invalidClient(`client_assertion exp must be within ${MAX_ASSERTION_LIFETIME_S} s`);
  if (typeof payload.jti !== 'string' || !payload.jti) throw invalidClient('client_assertion needs a jti');
  if (!(await deps.replay.firstUse(`${client.clientId}:${payload.jti}`, exp * 1000))) throw invalidClient('client_assertion jti was already used');
  return client;
}

/** The jose error's code in words; never the assertion itself. */
function assertionProblem(err: unknown): string {
  const e = err as { code?: string; claim?: string };
  if (e.code === 'ERR_JWT_EXPIRED') return 'expired';
  if (e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return `claim ${e.claim ?? ''} is wrong`;
  if (e.code === 'ERR_JWKS_NO_MATCHING_KEY' || e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return 'not signed by a registered key';
  if (e.code === 'ERR_JOSE_ALG_NOT_ALLOWED') return `algorithm not allowed (use ${ASSERTION_ALGS.join(', ')})`;
  return 'malformed';
}
