import { CONNECT_TO_PATTERN } from '../config/schema.js';
import { invalidInput } from '../errors.js';
import { normaliseHost } from '../policy/hosts.js';

/**
 * curl's --connect-to: connections for HOST:PORT go to TOHOST:TOPORT instead.
 * Such a mapping is an explicit admin decision, so it may reach loopback.
 */
export interface ConnectToRule {
  host: string;
  port: number;
  toHost: string;
  toPort: number;
}

export function parseConnectTo(entries: readonly string[], source = '--connect-to'): ConnectToRule[] {
  return entries.map((entry) => {
    const m = CONNECT_TO_PATTERN.exec(entry);
    if (!m) throw invalidInput(`${source}: expected HOST:PORT:TOHOST:TOPORT, got "${entry}"`);
    const host = normaliseHost(m[1]!);
    if (!host.ok) throw invalidInput(`${source}: "${m[1]}" is not a valid host: ${host.error}`);
    return { host: host.value.host, port: Number(m[2]), toHost: m[3]!.replace(/^\[|\]$/g, ''), toPort: Number(m[4]) };
  });
}

export function findConnectTo(rules: readonly ConnectToRule[], host: string, port: number): ConnectToRule | undefined {
  return rules.find((r) => r.host === host && r.port === port);
}
