/**
 * What stands between the network and the handlers: security headers, time limits and
 * per-client rate limits. Body size limits are the body parsers' (AppDeps.maxBodyBytes).
 */
import type { Server } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { outcome } from '../store/errors';
import type { Principal } from './auth/principal';
import { sendJson } from './fhir/routes';

/**
 * Helmet's headers on every response. The API answers JSON only, so its policy allows nothing
 * to load; Bull Board under `adminPath` is a page with its own scripts, inline styles and
 * web fonts, and gets a policy that lets it render.
 */
export function securityHeaders(adminPath: string): RequestHandler {
  const api = helmet({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } });
  const board = helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        styleSrc: ["'self'", "'unsafe-inline'", 'https://fonts.googleapis.com'],
        fontSrc: ["'self'", 'https://fonts.gstatic.com', 'data:'],
        imgSrc: ["'self'", 'data:'],
        // Plain HTTP behind the TLS proxy, or on a private network: upgrading would break it.
        upgradeInsecureRequests: null,
      },
    },
  });
  return (req, res, next) => (req.path === adminPath || req.path.startsWith(`${adminPath}/`) ? board : api)(req, res, next);
}

/**
 * Node's own limits on receiving a request (headers, then the whole body); a per-request timer
 * (requestTimeout) covers the time a handler takes.
 */
export function applyServerTimeouts(server: Server, timeoutMs: number): void {
  server.requestTimeout = timeoutMs;
  server.headersTimeout = Math.min(timeoutMs, 60_000);
}

/**
 * Answers 503 OperationOutcome `timeout` when a handler has not answered within `timeoutMs`;
 * one that hangs after starting its answer has its connection closed. The handler's own late
 * answer is dropped (the error handler ignores errors once headers are sent).
 */
export function requestTimeout(timeoutMs: number): RequestHandler {
  return (_req, res, next) => {
    const timer = setTimeout(() => {
      if (res.headersSent) {
        if (res.locals.streamsLong !== true) res.destroy();
        return;
      }
      res.set('Connection', 'close');
      sendJson(res, 503, outcome([{ severity: 'error', code: 'timeout', diagnostics: `The request was not answered within ${timeoutMs} ms` }]));
    }, timeoutMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));
    next();
  };
}

/**
 * Lets an answer that has started stream for as long as the client keeps reading (a bulk
 * export file of any size): the request timeout then bounds only the wait for its first byte.
 */
export function streamsLong(res: Response): void {
  res.locals.streamsLong = true;
}

export interface RateLimitOptions {
  redis: Redis;
  perMinute: number;
  /** Key prefix in Redis, e.g. the queue prefix, so gateways sharing a Redis count apart. */
  keyPrefix: string;
  log: Logger;
  /** A Redis that does not answer within this is treated as away. Default 500 ms. */
  timeoutMs?: number;
}

/**
 * Per-client limit over a sliding minute, counted in Redis so every gateway process shares it.
 * Keyed by the authenticated client (`res.locals.principal`; mount after authentication),
 * else the remote address. Over the limit: 429 OperationOutcome with Retry-After. If Redis is
 * away the request goes through (a limiter outage must not block care) and a warning is
 * logged once per outage.
 */
export function rateLimit(opts: RateLimitOptions): RequestHandler {
  const limiter = new RateLimiterRedis({ storeClient: opts.redis, points: opts.perMinute, duration: 60, keyPrefix: `${opts.keyPrefix}:rate`, rejectIfRedisNotReady: true });
  const timeoutMs = opts.timeoutMs ?? 500;
  let outage = false;
  return async (req, res, next) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        limiter.consume(clientKey(req, res)),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
      ]);
      if (outage) opts.log.info('rate limiter reachable again');
      outage = false;
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        const seconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        res.set('Retry-After', String(seconds));
        sendJson(res, 429, outcome([{ severity: 'error', code: 'throttled', diagnostics: `More than ${opts.perMinute} requests a minute from this client; retry in ${seconds} s` }]));
        return;
      }
      if (!outage) opts.log.warn({ err: (err as Error).message?.split('\n')[0] }, 'rate limiter unavailable (Redis): letting requests through unlimited');
      outage = true;
    } finally {
      clearTimeout(timer);
    }
    next();
  };
}

function clientKey(req: Request, res: Response): string {
  const principal = res.locals.principal as Principal | undefined;
  return principal ? `client:${principal.clientId}` : `ip:${req.ip ?? 'unknown'}`;
}
