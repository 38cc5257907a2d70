/** What the FHIR routes read off a request the same way: query pairs, Prefer, _since, its own URL. */
import type { Request } from 'express';
import { badRequest } from '../../store/errors';
import { parseDateRange } from '../../store/fhir-date';

/** Query parameters in order, repeated names kept (repeats AND together in FHIR search). */
export function queryPairs(req: Request): [string, string][] {
  const i = req.originalUrl.indexOf('?');
  return i < 0 ? [] : [...new URLSearchParams(req.originalUrl.slice(i + 1))];
}

/** `Prefer: handling=strict|lenient`, undefined when not said. */
export function preferHandling(req: Request): string | undefined {
  return /handling=(strict|lenient)/.exec(req.get('Prefer') ?? '')?.[1];
}

/**
 * `_since` as the instant the store compares with: through the FHIR date parser, since
 * Date.parse takes values PostgreSQL refuses ('2024', '99999', six-digit years).
 */
export function sinceParam(params: URLSearchParams): string | undefined {
  const since = params.get('_since');
  if (since === null) return undefined;
  const range = parseDateRange(since);
  if (!range) throw badRequest(`_since must be an instant, got '${since}'`, ['_since']);
  return range.lo;
}

/** The request's URL under the public base (a Bundle's self link, a manifest's `request`). */
export function selfUrl(req: Request, base: string): string {
  return `${base}${req.originalUrl.slice(req.baseUrl.length)}`;
}
