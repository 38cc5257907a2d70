import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';
import type { Scope } from './principal';
import { parseScope } from './scopes';

/** A registered client: one facility's system, with what it may ask for and how it proves itself. */
export interface Client {
  clientId: string;
  facility: string;
  /** Space-separated SMART scopes the client may be granted. */
  scope: string;
  scopes: Scope[];
  /** For client_secret_post / client_secret_basic. */
  clientSecret?: string;
  /** Public keys for private_key_jwt. */
  jwks?: JSONWebKeySet;
}

/** The clients allowed to ask for tokens, read once at start from CLIENTS_FILE. */
export class ClientRegistry {
  private readonly byId: Map<string, Client>;
  /** Every facility that has a client: the facilities a user token may name. */
  readonly facilities: ReadonlySet<string>;

  constructor(clients: Client[]) {
    this.byId = new Map(clients.map((c) => [c.clientId, c]));
    this.facilities = new Set(clients.map((c) => c.facility));
  }

  get(clientId: string): Client | undefined {
    return this.byId.get(clientId);
  }
}

/**
 * Compares a presented secret with the registered one in time independent of where they
 * differ (and of their lengths: both are hashed first). An unknown client is compared
 * against a dummy, so a wrong id costs what a wrong secret costs.
 */
export function secretMatches(client: Client | undefined, presented: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  const same = timingSafeEqual(digest(client?.clientSecret ?? '\u0000no-secret'), digest(presented));
  return same && client?.clientSecret !== undefined;
}

/** Reads and checks the registry file (an array of clients); errors name the file and the entry. */
export function loadClients(file: string): ClientRegistry {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(raw)) throw new Error(`${file}: expected a JSON array of clients`);
  const seen = new Set<string>();
  const clients = raw.map((c: Partial<Client>, i): Client => {
    const at = `${file}: client [${i}]`;
    if (!c || typeof c.clientId !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(c.clientId)) throw new Error(`${at}: clientId must be 1 to 100 letters, digits, '.', '_' or '-'`);
    if (seen.has(c.clientId)) throw new Error(`${at}: duplicate clientId '${c.clientId}'`);
    seen.add(c.clientId);
    if (typeof c.facility !== 'string' || !c.facility) throw new Error(`${at}: facility is required`);
    if (typeof c.scope !== 'string' || !c.scope.trim()) throw new Error(`${at}: scope is required`);
    const scopes = c.scope.trim().split(/\s+/).map((s) => {
      const parsed = parseScope(s);
      if (!parsed) throw new Error(`${at}: '${s}' is not a SMART resource scope`);
      return parsed;
    });
    if (c.clientSecret !== undefined && (typeof c.clientSecret !== 'string' || c.clientSecret.length < 16)) throw new Error(`${at}: clientSecret must be a string of at least 16 characters`);
    if (c.jwks !== undefined && !Array.isArray(c.jwks?.keys)) throw new Error(`${at}: jwks must be a JWK Set ({ "keys": [...] })`);
    if (c.clientSecret === undefined && c.jwks === undefined) throw new Error(`${at}: needs a clientSecret or a jwks`);
    return { clientId: c.clientId, facility: c.facility, scope: c.scope.trim(), scopes, clientSecret: c.clientSecret, jwks: c.jwks };
  });
  return new ClientRegistry(clients);
}
