import type { Express, RequestHandler } from 'express';
import type { Principal } from '../../gateway/auth/principal';
import request from 'supertest';
import { createAuth, type Auth, type AuthOptions } from '../../gateway/auth';
import { loadClients, type Client } from '../../gateway/auth/clients';
import { memoryReplayGuard } from '../../gateway/auth/replay';
import { generateSigningKey, type SigningKey } from '../../gateway/auth/signing-key';
import { DEMO_CLIENTS_FILE } from '../../gateway/config';
import demoClientsJson from '../../fixtures/demo-clients.json';

export const TEST_ISSUER = 'http://gateway.test';
export const TEST_AUDIENCE = `${TEST_ISSUER}/fhir`;
export const OFFICE = 'consortium-office';

let key: Promise<SigningKey> | undefined;
/** One key for the whole test file: generating one per server costs more than it tests. */
export const testSigningKey = (): Promise<SigningKey> => (key ??= generateSigningKey().then((k) => k.key));

/** Authentication over the demo clients, an in-memory replay guard and a fresh key; any option overridable. */
export async function testAuth(overrides: Partial<AuthOptions> = {}): Promise<Auth> {
  return createAuth({
    clients: loadClients(DEMO_CLIENTS_FILE),
    signingKey: await testSigningKey(),
    issuer: TEST_ISSUER,
    audience: TEST_AUDIENCE,
    tokenTtlSeconds: 300,
    officeFacility: OFFICE,
    replay: memoryReplayGuard(),
    ...overrides,
  });
}

/** The demo client of a facility, secret included. */
export function demoClient(facility: string): Client & { clientSecret: string } {
  const c = (demoClientsJson as { facility: string; clientId: string; clientSecret: string; scope: string }[]).find((x) => x.facility === facility);
  if (!c) throw new Error(`no demo client for ${facility}`);
  return { ...c, scopes: [] };
}

/** An access token for the facility's demo client, obtained as a client would: POST /auth/token. */
export async function tokenFor(app: Express, facility: string, scope?: string): Promise<string> {
  const c = demoClient(facility);
  const res = await request(app)
    .post('/auth/token')
    .type('form')
    .send({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, ...(scope ? { scope } : {}) });
  if (res.status !== 200) throw new Error(`token for ${facility}: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body as { access_token: string }).access_token;
}

/** A supertest agent sending the facility's token on every request. */
export async function agentFor(app: Express, facility: string, scope?: string): Promise<request.Agent> {
  return request.agent(app).set('Authorization', `Bearer ${await tokenFor(app, facility, scope)}`);
}

/** One agent per facility, each with its own token. */
export async function facilityAgents(app: Express, facilities: string[]): Promise<Record<string, request.Agent>> {
  return Object.fromEntries(await Promise.all(facilities.map(async (f) => [f, await agentFor(app, f)] as const)));
}

/**
 * For suites about something other than authentication (hardening, audit plumbing): every
 * request acts as the office, with every scope, as if its token had been checked in front.
 */
export function asOffice(): RequestHandler {
  return acting({ clientId: 'office-console', facility: OFFICE, scopes: ALL_SCOPES, access: { facility: OFFICE, unrestricted: true } });
}

/** Every request acts as `facility`'s demo client under its access rules, as if its token had been checked in front. */
export function asFacility(facility: string): RequestHandler {
  return acting({ clientId: demoClient(facility).clientId, facility, scopes: ALL_SCOPES, access: { facility } });
}

const ALL_SCOPES: Principal['scopes'] = [{ context: 'system', type: '*', interactions: 'cruds' }];

function acting(principal: Principal): RequestHandler {
  return (_req, res, next) => {
    // A copy each time: authentication adds break-glass to a request's principal.
    res.locals.principal = { ...principal, access: { ...principal.access } };
    next();
  };
}
