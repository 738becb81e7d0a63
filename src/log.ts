import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/**
 * Logs go to stderr: stdout belongs to command output (JSON Lines, PEM, tables).
 * JSON in production; human-readable when stderr is a terminal.
 */
export function createLogger(options: { level?: string; pretty?: boolean; name?: string } = {}): Logger {
  const level = options.level ?? process.env.TAGBOX_LOG_LEVEL ?? 'info';
  const wantPretty = options.pretty ?? Boolean(process.stderr.isTTY);
  const base = { level, name: options.name ?? 'tagbox', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  if (wantPretty) {
    // Loaded only for a terminal: most runs (services, tests, pipes) never need it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    return pino(base, pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname' }));
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

// Defence in depth: nothing should log a secret, but if a field with one of
// these names ever reaches the logger, it is censored.
const REDACTED_PATHS = [
  'secret', '*.secret', 'value', '*.value', 'password', '*.password', 'token', '*.token',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'masterKey', '*.masterKey', 'privateKey', '*.privateKey',
];
