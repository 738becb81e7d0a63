/**
 * `proxy.passthrough`: hosts whose tunnels are not opened (clients that pin
 * certificates). Same patterns and port rules as bundle entries; judged on
 * host and port alone. Being passthrough does not make a host allowed: the
 * proxy still asks decideTunnel().
 */
import { invalidInput } from '../errors.js';
import type { HostEntry } from './bundle-schema.js';
import { HostIndex } from './host-index.js';
import { normaliseHost, parseHostPattern, portsOf } from './hosts.js';

export interface HostMatcher {
  /** The pattern that matches host:port, or undefined. Invalid hosts never match. */
  match(host: string, port: number): string | undefined;
  readonly size: number;
}

/** `source` names the setting in errors, e.g. `tagbox.yaml: proxy.passthrough`. */
export function compileHostMatcher(entries: ReadonlyArray<string | HostEntry>, source = 'passthrough'): HostMatcher {
  const index = new HostIndex<{ text: string; ports: ReadonlySet<number> }>();
  entries.forEach((entry, i) => {
    const text = typeof entry === 'string' ? entry : entry.host;
    const r = parseHostPattern(text);
    if (!r.ok) throw invalidInput(`${source}[${i}]: ${r.error}`);
    index.add(r.value, { text: r.value.text, ports: portsOf(typeof entry === 'string' ? undefined : entry.ports) });
  });
  return {
    match(host, port) {
      const n = normaliseHost(host);
      if (!n.ok) return undefined;
      return index.find(n.value, (group) => group.find((e) => e.ports.has(port))?.text);
    },
    size: index.size,
  };
}
