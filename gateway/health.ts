import { Router, type NextFunction, type Request, type Response } from 'express';
import { collectDefaultMetrics, Histogram, register } from 'prom-client';
import { withTimeout } from '../workers/with-timeout';

/*
 * Metrics live in prom-client's global registry so that any module can add its own; the
 * guards keep a second import (or a second call) from registering a metric twice.
 */
if (!register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics({ register });

const DURATION_NAME = 'http_request_duration_seconds';

/**
 * HTTP request duration, labelled by method, route (the matched route pattern such as
 * `/fhir/:type/:id`, never the raw path, to keep cardinality bounded) and status code.
 */
export const httpRequestDuration: Histogram<'method' | 'route' | 'status'> =
  (register.getSingleMetric(DURATION_NAME) as Histogram<'method' | 'route' | 'status'> | undefined) ??
  new Histogram({
    name: DURATION_NAME,
    help: 'Duration of HTTP requests in seconds',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [register],
  });

/**
 * Records every request in `httpRequestDuration`. Mount it once, before the routes (main does,
 * on the outer app); unmatched requests are labelled `unmatched`.
 */
export function metricsMiddleware(req: Request, res: Response, next: NextFunction): void {
  const end = httpRequestDuration.startTimer();
  res.once('finish', () => {
    end({ method: req.method, route: routeLabel(req), status: String(res.statusCode) });
  });
  next();
}

function routeLabel(req: Request): string {
  const route = (req as Request & { route?: { path?: unknown } }).route;
  if (!route || typeof route.path !== 'string') return 'unmatched';
  return `${req.baseUrl ?? ''}${route.path}` || '/';
}

/** What readiness needs: a database that answers SQL and a Redis that answers PING. */
export interface HealthDeps {
  db: { query(sql: string): Promise<unknown> };
  redis: { ping(): Promise<unknown> };
  /** Per-check time limit; default 2000 ms. */
  timeoutMs?: number;
}

/**
 * `GET /healthz`: the process is alive. `GET /readyz`: 200 only when the database answers
 * `SELECT 1` and Redis answers PING, else 503 naming what failed. `GET /metrics`: Prometheus.
 */
export function createHealthRouter(deps: HealthDeps): Router {
  const router = Router();
  const timeoutMs = deps.timeoutMs ?? 2000;

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const [database, redis] = await Promise.all([
      check(() => deps.db.query('SELECT 1'), timeoutMs),
      check(() => deps.redis.ping(), timeoutMs),
    ]);
    const ok = database === 'ok' && redis === 'ok';
    const failed = [database === 'ok' ? null : 'database', redis === 'ok' ? null : 'redis'].filter((x): x is string => x !== null);
    res
      .status(ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json(ok ? { status: 'ok', checks: { database, redis } } : { status: 'unavailable', failed, checks: { database, redis } });
  });

  router.get('/metrics', async (_req, res, next) => {
    try {
      const body = await register.metrics();
      res.set('Content-Type', register.contentType).send(body);
    } catch (err) {
      next(err);
    }
  });

  return router;
}

/** 'ok', or a one-line reason (no stack trace, no connection string). */
async function check(fn: () => Promise<unknown>, timeoutMs: number): Promise<string> {
  try {
    await withTimeout(fn(), timeoutMs, `no answer within ${timeoutMs} ms`);
    return 'ok';
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return `failed: ${message.split('\n')[0].slice(0, 200)}`;
  }
}
