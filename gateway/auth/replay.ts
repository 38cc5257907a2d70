import type Redis from 'ioredis';

/** Remembers the `jti` of each client assertion until it expires, so none is accepted twice. */
export interface ReplayGuard {
  /** True the first time `key` is seen before `expiresAtMs`; false for a replay. */
  firstUse(key: string, expiresAtMs: number): Promise<boolean>;
}

/** In one process only: enough for a single gateway. */
export function memoryReplayGuard(now: () => number = Date.now): ReplayGuard {
  const seen = new Map<string, number>();
  return {
    async firstUse(key, expiresAtMs) {
      const t = now();
      for (const [k, exp] of seen) if (exp <= t) seen.delete(k);
      if (seen.has(key)) return false;
      seen.set(key, expiresAtMs);
      return true;
    },
  };
}

/** Shared by every gateway on one Redis: an assertion replayed at another process is refused too. */
export function redisReplayGuard(redis: Redis, prefix = 'auth:jti:'): ReplayGuard {
  return {
    async firstUse(key, expiresAtMs) {
      const ttl = Math.max(1, expiresAtMs - Date.now());
      return (await redis.set(`${prefix}${key}`, '1', 'PX', ttl, 'NX')) === 'OK';
    },
  };
}
