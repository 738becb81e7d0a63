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
   * Visits the values whose pattern matches `host`, in groups from the most
   * specific pattern to the least: exact host, then `*.` wildcards from the
   * deepest suffix up, then CIDR blocks from the longest prefix down. Stops at
   * the first group for which `pick` returns something, and returns that.
   * (A callback, not a generator: this is the hot path of every request.)
   */
  find<R>(host: NormalisedHost, pick: (values: readonly T[]) => R | undefined): R | undefined {
    const exact = this.exact.get(host.host);
    if (exact) {
      const r = pick(exact);
      if (r !== undefined) return r;
    }
    if (host.ip) return this.blocks.find(host.ip, (hit) => pick(hit.values));
    if (this.wildcard.size === 0) return undefined;
    const name = host.host;
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const values = this.wildcard.get(name.slice(dot + 1));
      if (values) {
        const r = pick(values);
        if (r !== undefined) return r;
      }
    }
    return undefined;
  }

  /** The exact host names (and IP literals) indexed: what a cache can prepare for ahead of time. */
  exactHosts(): IterableIterator<string> {
    return this.exact.keys();
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
