/** Small builders for policy tests. */
import type { Bundle, Connection, HostEntry } from '../../src/policy/bundle-schema.js';

type EntryInput = string | { readonly host: string; readonly ports?: readonly number[] };

const entry = (d: EntryInput): HostEntry => (typeof d === 'string' ? { host: d } : { host: d.host, ...(d.ports ? { ports: [...d.ports] } : {}) });
import type { EgressRequest } from '../../src/policy/decide.js';

export function bundle(name: string, domains: readonly EntryInput[] = [], connections: Connection[] = []): Bundle {
  return { name, domains: domains.map(entry), connections };
}

export function connection(name: string, allowedWebsites: readonly EntryInput[], narrow?: Connection['narrow'], secret = `${name}-secret`): Connection {
  return {
    name,
    secret,
    allowedWebsites: allowedWebsites.map(entry),
    inject: { header: 'Authorization', value: 'Bearer {{secret}}' },
    ...(narrow ? { narrow } : {}),
  };
}

export function req(host: string, path = '/', method = 'GET', port = 443): EgressRequest {
  return { method, scheme: port === 80 ? 'http' : 'https', host, port, path };
}
