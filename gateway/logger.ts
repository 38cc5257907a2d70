import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { LOG_LEVELS, type LogLevel } from './config';
import { maskIdNumbers, safeError, safeRequest, scrub } from './redact';

/*
 * PRIVACY: never log patient names, ID numbers (resident identity card, medical record,
 * insurance or phone numbers), addresses or resource bodies at info level or above. Log
 * resource types, ids we generated, counts, durations and status codes instead. Anything
 * identifying belongs at debug at most, and only while diagnosing on a test system.
 */

export type { Logger };

function initialLevel(): LogLevel {
  const raw = process.env.LOG_LEVEL?.trim().toLowerCase();
  return raw && (LOG_LEVELS as readonly string[]).includes(raw) ? (raw as LogLevel) : 'info';
}

const options: LoggerOptions = {
  level: initialLevel(),
  base: { service: 'fhir-gateway', pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
  // Belt and braces: credentials must never reach a log line.
  redact: {
    paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'password', '*.password'],
    censor: '[redacted]',
  },
  // No stack traces and no ID numbers, whatever a caller passes (see redact.ts).
  serializers: { err: safeError, error: safeError, req: safeRequest },
  formatters: { log: (obj) => scrub(obj) as Record<string, unknown> },
  hooks: {
    logMethod(args, method) {
      method.apply(this, args.map((a) => (typeof a === 'string' ? maskIdNumbers(a) : a)) as Parameters<typeof method>);
    },
  },
};

/** A logger with the process logger's options (tests pass a destination to read what it writes). */
export function createLogger(destination?: DestinationStream): Logger {
  return destination ? pino(options, destination) : pino(options);
}

/**
 * The process-wide logger: JSON lines on stdout. Its level starts from LOG_LEVEL (so tests can
 * set LOG_LEVEL=silent) and main sets it from the validated config before anything logs.
 */
export const logger: Logger = createLogger();

/** A child logger for one component, e.g. `childLogger('redis')`. */
export function childLogger(component: string): Logger {
  return logger.child({ component });
}
