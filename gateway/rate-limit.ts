import type { Request, RequestHandler, Response } from 'express';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { outcome } from '../store/errors';
import type { Principal } from './auth/principal';
import { sendJson } from './fhir/routes';
import { withTimeout } from '../workers/with-timeout';

export interface RateLimitOptions {
  redis: Redis;
  perMinute: number;
  /** Key prefix in Redis, e.g. the queue prefix, so gateways sharing a Redis count apart. */
  keyPrefix: string;
  log: Logger;
  /** How often a process adds its counts to the shared ones. Default 100 ms. */
  syncMs?: number;
  /** A sync that has no answer within this counts as failed. Default 500 ms. */
  timeoutMs?: number;
}

const WINDOW_MS = 60_000;

interface Count {
  /** Start of the minute counted (ms since the epoch, a multiple of WINDOW_MS). */
  window: number;
  /** Every process's requests in the window, as Redis last said, plus this process's since. */
  known: number;
  /** This process's requests not yet added to Redis. */
  unsynced: number;
}

/**
 * Per-client limit over each clock minute, shared by every gateway process through Redis.
 * Keyed by the authenticated client (`res.locals.principal`; mount after authentication), else
 * the remote address. Over the limit: 429 OperationOutcome with Retry-After.
 *
 * The decision is taken in the process, from the count Redis gave at the last sync plus this
 * process's requests since; every `syncMs` the process adds its requests to the shared count
 * (INCRBY) and learns everyone's. A request therefore never waits on Redis (a round trip was a
 * fifth of a cached read's latency), at the price of letting through what other processes
 * admitted in the last `syncMs` before it is seen. With Redis away each process still holds
 * its clients to the limit by itself, and a warning is logged once per outage.
 */
export function rateLimit(opts: RateLimitOptions): RequestHandler {
  const counts = new Map<string, Count>();
  const syncMs = opts.syncMs ?? 100;
  const timeoutMs = opts.timeoutMs ?? 500;
  let scheduled: NodeJS.Timeout | undefined;
  let outage = false;

  const sync = async (): Promise<void> => {
    scheduled = undefined;
    const now = Date.now();
    const batch: [string, Count][] = [];
    for (const [key, count] of counts) {
      if (count.window + WINDOW_MS <= now) counts.delete(key);
      else if (count.unsynced > 0) batch.push([key, count]);
    }
    if (batch.length === 0) return;
    const pipeline = opts.redis.multi();
    for (const [key, count] of batch) {
      const redisKey = `${opts.keyPrefix}:rate:${key}:${count.window}`;
      pipeline.incrby(redisKey, count.unsynced).pexpireat(redisKey, count.window + 2 * WINDOW_MS);
      // Counted here whatever Redis answers: a failed sync leaves the shared count short, never this process's.
      count.known += count.unsynced;
      count.unsynced = 0;
    }
    try {
      const replies = await withTimeout(pipeline.exec(), timeoutMs, `no answer within ${timeoutMs} ms`);
      batch.forEach(([, count], i) => {
        const [err, total] = replies?.[2 * i] ?? [new Error('no reply')];
        if (err) throw err;
        // Requests admitted while the sync was out are in `unsynced`, not in Redis's total yet.
        count.known = Math.max(count.known, Number(total));
      });
      if (outage) opts.log.info('rate limiter: shared counts reachable again');
      outage = false;
    } catch (err) {
      if (!outage) opts.log.warn({ err: (err as Error).message?.split('\n')[0] }, 'rate limiter: Redis unavailable; each process limits its clients by itself');
      outage = true;
    }
  };

  return (req, res, next) => {
    const now = Date.now();
    const window = now - (now % WINDOW_MS);
    const key = clientKey(req, res);
    let count = counts.get(key);
    if (!count || count.window !== window) {
      count = { window, known: 0, unsynced: 0 };
      counts.set(key, count);
    }
    if (count.known + count.unsynced >= opts.perMinute) {
      const seconds = Math.max(1, Math.ceil((window + WINDOW_MS - now) / 1000));
      res.set('Retry-After', String(seconds));
      sendJson(res, 429, outcome([{ severity: 'error', code: 'throttled', diagnostics: `More than ${opts.perMinute} requests a minute from this client; retry in ${seconds} s` }]));
      return;
    }
    count.unsynced++;
    scheduled ??= setTimeout(() => void sync(), syncMs).unref();
    next();
  };
}

function clientKey(req: Request, res: Response): string {
  const principal = res.locals.principal as Principal | undefined;
  return principal ? `client:${principal.clientId}` : `ip:${req.ip ?? 'unknown'}`;
}
