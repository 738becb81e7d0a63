import { invalidInput } from '../errors.js';

/** commander helper for repeatable options: `--x a --x b` -> ['a', 'b']. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `--port N`: 0-65535 (0 picks a free one). */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw invalidInput(`--port: expected a port number 0-65535, got "${value}"`);
  return n;
}
