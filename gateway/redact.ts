/**
 * What must never leave the process in a log line or an error answer: a resident ID number
 * (18 characters, the last a check digit that may be X) and a stack trace.
 */

const ID_NUMBER = /(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])/g;

export const ID_NUMBER_MASK = '[id number]';

export function maskIdNumbers(text: string): string {
  return text.replace(ID_NUMBER, ID_NUMBER_MASK);
}

/**
 * A copy of a log object with every string masked and every `stack` dropped, at any depth.
 * Errors become their name, masked message and code.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskIdNumbers(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (value instanceof Error) return safeError(value);
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (k !== 'stack') out[k] = scrub(v, depth + 1);
  return out;
}

/** pino serializer for `err`: type, masked message and code; never the stack or a driver's `detail`. */
export function safeError(err: unknown): unknown {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { type: err.name, message: maskIdNumbers(err.message), ...(code !== undefined ? { code } : {}) };
  }
  return scrub(err);
}

/** pino serializer for `req`: method and path only (a query string can carry an ID number). */
export function safeRequest(req: unknown): unknown {
  if (req === null || typeof req !== 'object') return req;
  const r = req as { method?: unknown; originalUrl?: unknown; url?: unknown };
  const url = typeof r.originalUrl === 'string' ? r.originalUrl : typeof r.url === 'string' ? r.url : undefined;
  return { method: r.method, path: url === undefined ? undefined : maskIdNumbers(url.split('?')[0]) };
}
