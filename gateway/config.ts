import type { UpstreamConfig } from '../workers/forward';
import { DEFAULT_RULES_FILE } from '../mpi/rules';
import { resolve } from 'node:path';
import type { JWK } from 'jose';
import type { OidcOptions } from './auth/user-tokens';
import { parseMllpPeers, type MllpPeers } from './ingest/mllp-peers';

/** pino's level names. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  /** TCP port of the HTTP API (`PORT`, default 8080). */
  port: number;
  /** Absolute path of the data directory (`DATA_DIR`, default ./data): PGlite cluster, private Redis. */
  dataDir: string;
  /** PostgreSQL connection string (`DATABASE_URL`); undefined means embedded PGlite under dataDir. */
  databaseUrl?: string;
  /** Redis URL (`REDIS_URL`); undefined means a private redis-server child under dataDir. */
  redisUrl?: string;
  /** `LOG_LEVEL`, default info. */
  logLevel: LogLevel;
  /** Public base of the FHIR API, no trailing slash (`BASE_URL`, default http://localhost:<PORT>/fhir). */
  baseUrl: string;
  /** Load the demo consortium into an empty store on start (`DEMO`, default on). */
  demo: boolean;
  /** Pool size for PostgreSQL (`PG_MAX_CONNECTIONS`); undefined keeps the driver's default. */
  pgMaxConnections?: number;
  /** TCP port of the MLLP listener (`MLLP_PORT`, default 2575; 0 turns it off). */
  mllpPort: number;
  /** Run the ingest worker inside the gateway process (`INGEST_WORKER`, default on). */
  inlineWorker: boolean;
  /** Ingest jobs one worker process takes at once, applied together (`WORKER_CONCURRENCY`, default 64). */
  workerConcurrency: number;
  /** Import jobs (a file's reader, its chunks) one process runs at once (`IMPORT_CONCURRENCY`, default 3). */
  importConcurrency: number;
  /** The server folder `POST /imports` may name files in (`IMPORT_DIR`); unset: uploads only. */
  importDir?: string;
  /** The registered sources (`SOURCES_FILE`, default the demo consortium's fixtures/demo-sources.json). */
  sourcesFile: string;
  /** The patient index's matching rules (`MPI_RULES_FILE`, default mpi/rules/default.json). */
  mpiRulesFile: string;
  /** Result recognition's validity windows and equivalent codes (`RECOGNITION_RULES_FILE`); unset: workflows/recognition/rules.json. */
  recognitionRulesFile?: string;
  /** Key prefix of the queues in Redis (`QUEUE_PREFIX`, default `{fhirgw}`); gateways sharing a Redis need their own. */
  queuePrefix: string;
  /** The registered clients (`CLIENTS_FILE`, default the demo's fixtures/demo-clients.json, refused with DEMO off). */
  clientsFile: string;
  /** The private JWK the gateway signs tokens with (`AUTH_SIGNING_KEY`, JSON); unset: generated once under DATA_DIR/auth. */
  signingKeyJwk?: JWK;
  /** `iss` of the gateway's tokens (`AUTH_ISSUER`, default the origin of BASE_URL). */
  authIssuer: string;
  /** Lifetime of an access token in seconds (`ACCESS_TOKEN_TTL`, default 300). */
  accessTokenTtl: number;
  /** The consortium office's facility id (`OFFICE_FACILITY`, default consortium-office). */
  officeFacility: string;
  /** Clinicians' tokens from an OpenID Connect provider (`OIDC_ISSUER` and `OIDC_JWKS_URL`, both or neither). */
  oidc?: OidcOptions;
  /** The upstream FHIR server every change is forwarded to (`FORWARD_URL`, with `FORWARD_TOKEN_URL`, `FORWARD_CLIENT_ID`, `FORWARD_CLIENT_SECRET`); unset: no forwarding. */
  forward?: UpstreamConfig;
  /** `/metrics` without a token (`METRICS_PUBLIC`, default on); off: the office's token. */
  metricsPublic: boolean;
  /** Who may connect to the MLLP listener, for which facilities (`MLLP_PEERS`). */
  mllpPeers: MllpPeers;
  /** Mutual TLS on the MLLP listener (`MLLP_TLS_CERT`, `MLLP_TLS_KEY`, `MLLP_TLS_CA`: PEM files, all three or none). */
  mllpTls?: { certFile: string; keyFile: string; caFile: string };
  /** Run the audit worker inside the gateway process (`AUDIT_WORKER`, default on). */
  auditWorker: boolean;
  /**
   * Notifications (FHIR Subscriptions): delivery attempts before a dead letter, and the URL
   * prefixes a rest-hook may call (`SUBSCRIPTION_ENDPOINTS`); unset: any in the demo, none
   * otherwise, so that a production gateway is never made to call into its own network.
   */
  notify: { attempts: number; endpoints?: string[] };
  /** Largest import upload kept, in bytes (`MAX_IMPORT_BYTES`, default 2 GiB); larger is a 413. */
  maxImportBytes: number;
  /** Largest request body accepted, in bytes (`MAX_BODY_BYTES`, default 20 MB); larger is a 413. */
  maxBodyBytes: number;
  /** Time a request may take, in ms (`REQUEST_TIMEOUT_MS`, default 30000); then a 503. */
  requestTimeoutMs: number;
  /** Requests one client may make per minute (`RATE_LIMIT_PER_MINUTE`, default 6000; 0 turns the limit off). */
  rateLimitPerMinute: number;
}

export const DEMO_CLIENTS_FILE = resolve(__dirname, '../fixtures/demo-clients.json');

/** A configuration error: its message is one line that names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Reads the configuration from environment variables; throws a ConfigError naming the first bad one. */
export function loadConfig(env: Env = process.env): Config {
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };

  const port = parsePort('PORT', get('PORT') ?? '8080');
  const dataDir = resolve(get('DATA_DIR') ?? './data');
  const databaseUrl = parseUrl('DATABASE_URL', get('DATABASE_URL'), ['postgres:', 'postgresql:']);
  const redisUrl = parseUrl('REDIS_URL', get('REDIS_URL'), ['redis:', 'rediss:']);
  const logLevel = parseLogLevel('LOG_LEVEL', get('LOG_LEVEL') ?? 'info');
  const baseUrl = (parseUrl('BASE_URL', get('BASE_URL'), ['http:', 'https:']) ?? `http://localhost:${port}/fhir`).replace(/\/+$/, '');
  const demo = parseBoolean('DEMO', get('DEMO') ?? 'true');
  const maxRaw = get('PG_MAX_CONNECTIONS');
  const pgMaxConnections = maxRaw === undefined ? undefined : parsePositiveInt('PG_MAX_CONNECTIONS', maxRaw, 1000);

  const mllpRaw = get('MLLP_PORT') ?? '2575';
  const mllpPort = mllpRaw === '0' ? 0 : parsePort('MLLP_PORT', mllpRaw);
  const inlineWorker = parseBoolean('INGEST_WORKER', get('INGEST_WORKER') ?? 'true');
  const workerConcurrency = parsePositiveInt('WORKER_CONCURRENCY', get('WORKER_CONCURRENCY') ?? '64', 256);
  const importConcurrency = parsePositiveInt('IMPORT_CONCURRENCY', get('IMPORT_CONCURRENCY') ?? '3', 64);
  const importRaw = get('IMPORT_DIR');
  const importDir = importRaw === undefined ? undefined : resolve(importRaw);
  const sourcesFile = resolve(get('SOURCES_FILE') ?? resolve(__dirname, '../fixtures/demo-sources.json'));
  const mpiRulesFile = resolve(get('MPI_RULES_FILE') ?? DEFAULT_RULES_FILE);
  const recognitionRaw = get('RECOGNITION_RULES_FILE');
  const recognitionRulesFile = recognitionRaw === undefined ? undefined : resolve(recognitionRaw);

  const queuePrefix = get('QUEUE_PREFIX') ?? '{fhirgw}';
  if (!/^\{[A-Za-z0-9_-]{1,40}\}$/.test(queuePrefix)) throw new ConfigError(`Invalid QUEUE_PREFIX: '${queuePrefix}' must look like {name} (a Redis Cluster hash tag)`);

  const clientsFile = resolve(get('CLIENTS_FILE') ?? DEMO_CLIENTS_FILE);
  // The demo's secrets are published with the code: never let them guard real records.
  if (!demo && clientsFile === DEMO_CLIENTS_FILE) throw new ConfigError('Invalid CLIENTS_FILE: the demo clients (published secrets) are refused with DEMO off; set CLIENTS_FILE');
  const signingKeyJwk = parseJwk('AUTH_SIGNING_KEY', get('AUTH_SIGNING_KEY'));
  const authIssuer = (parseUrl('AUTH_ISSUER', get('AUTH_ISSUER'), ['http:', 'https:']) ?? new URL(baseUrl).origin).replace(/\/+$/, '');
  const accessTokenTtl = parsePositiveInt('ACCESS_TOKEN_TTL', get('ACCESS_TOKEN_TTL') ?? '300', 3600);
  const officeFacility = get('OFFICE_FACILITY') ?? 'consortium-office';
  const oidcIssuer = get('OIDC_ISSUER');
  const oidcJwks = parseUrl('OIDC_JWKS_URL', get('OIDC_JWKS_URL'), ['http:', 'https:']);
  if ((oidcIssuer === undefined) !== (oidcJwks === undefined)) throw new ConfigError('Invalid OIDC_ISSUER / OIDC_JWKS_URL: set both or neither');
  const oidc = oidcIssuer && oidcJwks ? { issuer: oidcIssuer, jwksUrl: oidcJwks, audience: get('OIDC_AUDIENCE'), facilityClaim: get('OIDC_FACILITY_CLAIM') ?? 'facility' } : undefined;
  const forwardUrl = parseUrl('FORWARD_URL', get('FORWARD_URL'), ['http:', 'https:']);
  const forwardTokenUrl = parseUrl('FORWARD_TOKEN_URL', get('FORWARD_TOKEN_URL'), ['http:', 'https:']);
  const forwardClient = [get('FORWARD_CLIENT_ID'), get('FORWARD_CLIENT_SECRET')];
  if (forwardTokenUrl !== undefined && forwardClient.some((v) => v === undefined)) throw new ConfigError('Invalid FORWARD_TOKEN_URL: FORWARD_CLIENT_ID and FORWARD_CLIENT_SECRET are needed with it');
  if (forwardTokenUrl !== undefined && forwardUrl === undefined) throw new ConfigError('Invalid FORWARD_TOKEN_URL: set FORWARD_URL, the upstream to forward to');
  const forward = forwardUrl ? { url: forwardUrl, ...(forwardTokenUrl && { tokenUrl: forwardTokenUrl, clientId: forwardClient[0], clientSecret: forwardClient[1] }) } : undefined;
  const metricsPublic = parseBoolean('METRICS_PUBLIC', get('METRICS_PUBLIC') ?? 'true');
  let mllpPeers: MllpPeers;
  try {
    mllpPeers = parseMllpPeers(get('MLLP_PEERS'), demo);
  } catch (err) {
    throw new ConfigError(`Invalid MLLP_PEERS: ${(err as Error).message}`);
  }

  const tlsFiles = ['MLLP_TLS_CERT', 'MLLP_TLS_KEY', 'MLLP_TLS_CA'].map((n) => get(n));
  if (tlsFiles.some((f) => f !== undefined) && !tlsFiles.every((f) => f !== undefined)) throw new ConfigError('Invalid MLLP_TLS_CERT / MLLP_TLS_KEY / MLLP_TLS_CA: set all three or none');
  const mllpTls = tlsFiles[0] ? { certFile: resolve(tlsFiles[0]), keyFile: resolve(tlsFiles[1]!), caFile: resolve(tlsFiles[2]!) } : undefined;

  const auditWorker = parseBoolean('AUDIT_WORKER', get('AUDIT_WORKER') ?? 'true');
  const maxImportBytes = parsePositiveInt('MAX_IMPORT_BYTES', get('MAX_IMPORT_BYTES') ?? String(2 * 1024 ** 3), 1024 ** 4);
  const maxBodyBytes = parsePositiveInt('MAX_BODY_BYTES', get('MAX_BODY_BYTES') ?? String(20 * 1024 * 1024), 1024 * 1024 * 1024);
  const requestTimeoutMs = parsePositiveInt('REQUEST_TIMEOUT_MS', get('REQUEST_TIMEOUT_MS') ?? '30000', 3_600_000);
  const rateRaw = get('RATE_LIMIT_PER_MINUTE') ?? '6000';
  const rateLimitPerMinute = rateRaw === '0' ? 0 : parsePositiveInt('RATE_LIMIT_PER_MINUTE', rateRaw, 10_000_000);
  const endpointsRaw = get('SUBSCRIPTION_ENDPOINTS');
  const notify = {
    attempts: parsePositiveInt('NOTIFY_ATTEMPTS', get('NOTIFY_ATTEMPTS') ?? '8', 30),
    endpoints: endpointsRaw === undefined ? (demo ? undefined : []) : endpointsRaw.split(',').map((e) => e.trim()).filter(Boolean).map((e) => parseUrl('SUBSCRIPTION_ENDPOINTS', e, ['http:', 'https:'])!),
  };

  return {
    port, dataDir, databaseUrl, redisUrl, logLevel, baseUrl, demo, pgMaxConnections, mllpPort, inlineWorker, workerConcurrency, importConcurrency, importDir, sourcesFile, mpiRulesFile, recognitionRulesFile, queuePrefix,
    clientsFile, signingKeyJwk, authIssuer, accessTokenTtl, officeFacility, oidc, forward, metricsPublic, mllpPeers, mllpTls,
    auditWorker, maxBodyBytes, maxImportBytes, requestTimeoutMs, rateLimitPerMinute, notify,
  };
}

function parsePort(name: string, raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw new ConfigError(`Invalid ${name}: '${raw}' is not a TCP port (an integer from 1 to 65535)`);
  }
  return Number(raw);
}

function parsePositiveInt(name: string, raw: string, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new ConfigError(`Invalid ${name}: '${raw}' is not an integer from 1 to ${max}`);
  }
  return Number(raw);
}

function parseLogLevel(name: string, raw: string): LogLevel {
  const level = raw.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`Invalid ${name}: '${raw}' is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return level as LogLevel;
}

function parseBoolean(name: string, raw: string): boolean {
  const v = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`Invalid ${name}: '${raw}' is not a boolean (use true/false, 1/0, yes/no or on/off)`);
}

function parseJwk(name: string, raw: string | undefined): JWK | undefined {
  if (raw === undefined) return undefined;
  let jwk: unknown;
  try {
    jwk = JSON.parse(raw);
  } catch {
    // Never echo the value: it is a private key.
    throw new ConfigError(`Invalid ${name}: not JSON (expected a private JWK)`);
  }
  if (!jwk || typeof jwk !== 'object' || typeof (jwk as { kty?: unknown }).kty !== 'string' || typeof (jwk as { d?: unknown }).d !== 'string') {
    throw new ConfigError(`Invalid ${name}: expected a private JWK (an object with kty and d)`);
  }
  return jwk as JWK;
}

function parseUrl(name: string, raw: string | undefined, protocols: string[]): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never echo the value: connection strings carry passwords.
    throw new ConfigError(`Invalid ${name}: not a URL (expected ${protocols.map((p) => `${p}//...`).join(' or ')})`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`Invalid ${name}: scheme '${url.protocol}' is not supported (expected ${protocols.map((p) => `${p}//...`).join(' or ')})`);
  }
  return raw;
}

/** The URL without its password, for logs. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparseable url)';
  }
}
