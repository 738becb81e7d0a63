import type { Bundle as PolicyBundle, Connection as PolicyConnection, HostEntry } from '../policy/bundle-schema.js';
import type { Bundle, BundleSpec, Connection, ConnectionSpec, DomainEntry } from './model.js';

/**
 * Conversions between the access model (what the store and the API hold) and
 * the policy module's bundles (what the proxy compiles). One shape per side;
 * these are the only crossings.
 */
export function toPolicyBundle(bundle: Pick<Bundle, 'name' | 'domains'> & { connections: ConnectionSpec[] }): PolicyBundle {
  return { name: bundle.name, domains: bundle.domains.map(hostEntry), connections: bundle.connections.map(toPolicyConnection) };
}

export function toPolicyConnection(c: ConnectionSpec): PolicyConnection {
  return {
    name: c.name,
    secret: c.secret,
    allowedWebsites: c.allowedWebsites.map((w) => (typeof w === 'string' ? { host: w } : hostEntry(w))),
    inject: c.inject,
    ...(c.narrow ? { narrow: c.narrow } : {}),
    ...(c.plainHttp ? { plainHttp: true } : {}),
    ...(c.github ? { github: c.github } : {}),
  };
}

/** The spec as the policy schema reads it (strict: no description, no ids). */
export function specAsPolicyInput(spec: BundleSpec): unknown {
  // Malformed input (from an API client) passes through as is, so that the schema names the field.
  return { name: spec.name, domains: mapIfArray(spec.domains, entryInput), connections: mapIfArray(spec.connections, connectionInput) };
}

export function connectionInput(c: ConnectionSpec): unknown {
  if (!c || typeof c !== 'object') return c;
  return {
    name: c.name,
    secret: c.secret,
    allowedWebsites: mapIfArray(c.allowedWebsites, (w) => (typeof w === 'string' ? w : entryInput(w))),
    inject: c.inject,
    ...(c.narrow ? { narrow: c.narrow } : {}),
    ...(c.plainHttp !== undefined ? { plainHttp: c.plainHttp } : {}),
    ...(c.github !== undefined ? { github: c.github } : {}),
  };
}

function mapIfArray<T>(value: readonly T[] | undefined, fn: (item: T) => unknown): unknown {
  return Array.isArray(value) ? value.map(fn) : value;
}

/** A validated policy bundle back to a spec, in its canonical (normalised) form. */
export function fromPolicyBundle(b: PolicyBundle, description?: string): BundleSpec {
  return {
    name: b.name,
    ...(description ? { description } : {}),
    domains: b.domains.map(domainEntry),
    connections: b.connections.map(fromPolicyConnection),
  };
}

export function fromPolicyConnection(c: PolicyConnection): ConnectionSpec {
  return {
    name: c.name,
    secret: c.secret,
    allowedWebsites: c.allowedWebsites.map((w) => (w.ports ? { host: w.host, ports: w.ports } : w.host)),
    inject: c.inject,
    ...(c.narrow && Object.keys(c.narrow).length ? { narrow: stripUndefined(c.narrow) } : {}),
    ...(c.plainHttp ? { plainHttp: true } : {}),
    ...(c.github ? { github: stripUndefined(c.github) } : {}),
  };
}

/** A stored bundle as a spec (drops ids and times), e.g. for diffs and export. */
export function specOf(b: Bundle): BundleSpec {
  return {
    name: b.name,
    ...(b.description ? { description: b.description } : {}),
    domains: b.domains.map(domainEntry),
    connections: b.connections.map(connectionSpecOf),
  };
}

export function connectionSpecOf(c: Connection | ConnectionSpec): ConnectionSpec {
  return {
    name: c.name,
    secret: c.secret,
    allowedWebsites: c.allowedWebsites,
    inject: c.inject,
    ...(c.narrow ? { narrow: c.narrow } : {}),
    ...(c.plainHttp ? { plainHttp: true } : {}),
    ...(c.github ? { github: c.github } : {}),
  };
}

function hostEntry(d: DomainEntry): HostEntry {
  return d.ports ? { host: d.host, ports: d.ports } : { host: d.host };
}

function domainEntry(d: HostEntry | DomainEntry): DomainEntry {
  return d.ports ? { host: d.host, ports: d.ports } : { host: d.host };
}

function entryInput(d: DomainEntry | string): unknown {
  if (!d || typeof d !== 'object') return d;
  return d.ports ? { host: d.host, ports: d.ports } : d.host;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
