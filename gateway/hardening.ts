/**
 * What stands between the network and the handlers: security headers and time limits. Body
 * size limits are the body parsers' (AppDeps.maxBodyBytes); rate limits are rate-limit.ts's.
 */
import type { Server } from 'node:http';
import type { RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { outcome } from '../store/errors';
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
