/**
 * An index from host patterns to values, so that finding the rules for a host
 * costs one map probe per label (plus one per CIDR prefix length in use), not
 * one test per rule.
 */
import { CidrTable } from './cidr.js';
import type { HostPattern, NormalisedHost } from './hosts.js';

export class HostIndex<T> {
  private readonly exact = new Map<string, T[]>();
  private readonly wildcard = new Map<string, T[]>();
  private readonly blocks = new CidrTable<T>();
  private count = 0;

  add(pattern: HostPattern, value: T): void {
    this.count++;
    switch (pattern.kind) {
      case 'exact':
      case 'ip':
        push(this.exact, pattern.host, value);
        return;
      case 'wildcard':
        push(this.wildcard, pattern.suffix, value);
        return;
      case 'cidr':
        this.blocks.add(pattern.cidr, value);
        return;
    }
  }

  /**
   * The values whose pattern matches `host`, in groups from the most specific
   * pattern to the least: exact host, then `*.` wildcards from the deepest
   * suffix up, then CIDR blocks from the longest prefix down.
   */
  *lookup(host: NormalisedHost): Generator<readonly T[]> {
    const exact = this.exact.get(host.host);
    if (exact) yield exact;
    if (host.ip) {
      for (const hit of this.blocks.lookup(host.ip)) yield hit.values;
      return;
    }
    if (this.wildcard.size === 0) return;
    const name = host.host;
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const values = this.wildcard.get(name.slice(dot + 1));
      if (values) yield values;
    }
  }

  get size(): number {
    return this.count;
  }
}

function push<K, T>(map: Map<K, T[]>, key: K, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
