import type { Bundle, Connection, HostInput } from './types';

/**
 * A bundle as the form holds it: every field a string or flag, exactly as
 * typed, so that a refused save keeps all of it. `bodyOf` turns it into the
 * PUT /bundles/{name} body, keeping list positions so that the server's
 * `connections[0].allowedWebsites[1]` names the row the person sees.
 */
export interface HostRow {
  host: string;
  ports: string;
}

export interface ConnectionDraft {
  name: string;
  secret: string;
  websites: HostRow[];
  /** `github`: a GitHub App connection; its websites and injection are GitHub's, the fields below are its settings. */
  injectKind: 'header' | 'basic' | 'github';
  header: string;
  value: string;
  username: string;
  narrowHost: string;
  pathPrefix: string;
  readOnly: boolean;
  plainHttp: boolean;
  /** owner/name, separated by commas or spaces; empty: every repository of the installation. */
  repositories: string;
  /** `contents: write, pull_requests: write`; empty: the app's own permissions. */
  permissions: string;
  pushBranches: string;
}

export interface BundleDraft {
  name: string;
  description: string;
  domains: HostRow[];
  connections: ConnectionDraft[];
}

export const emptyHost = (): HostRow => ({ host: '', ports: '' });

export const emptyConnection = (): ConnectionDraft => ({
  name: '',
  secret: '',
  websites: [emptyHost()],
  injectKind: 'header',
  header: 'Authorization',
  value: 'Bearer {{secret}}',
  username: '',
  narrowHost: '',
  pathPrefix: '',
  readOnly: false,
  plainHttp: false,
  repositories: '',
  permissions: '',
  pushBranches: 'tagbox/*',
});

export const emptyBundle = (): BundleDraft => ({ name: '', description: '', domains: [], connections: [] });

const rowOf = (h: HostInput): HostRow => (typeof h === 'string' ? { host: h, ports: '' } : { host: h.host, ports: (h.ports ?? []).join(', ') });

export function draftOf(b: Bundle): BundleDraft {
  return {
    name: b.name,
    description: b.description,
    domains: b.domains.map(rowOf),
    connections: b.connections.map((c) => ({
      name: c.name,
      secret: c.secret,
      websites: (c.allowedWebsites ?? []).map(rowOf),
      injectKind: c.github ? 'github' : c.inject && 'basic' in c.inject ? 'basic' : 'header',
      header: c.inject && 'header' in c.inject ? c.inject.header : 'Authorization',
      value: c.inject && 'header' in c.inject ? c.inject.value : 'Bearer {{secret}}',
      username: c.inject && 'basic' in c.inject ? c.inject.basic.username : '',
      narrowHost: c.narrow?.host ?? '',
      pathPrefix: c.narrow?.pathPrefix ?? '',
      readOnly: c.narrow?.readOnly ?? false,
      plainHttp: c.plainHttp ?? false,
      repositories: (c.github?.repositories ?? []).join(', '),
      permissions: Object.entries(c.github?.permissions ?? {})
        .map(([k, v]) => `${k}: ${v}`)
        .join(', '),
      pushBranches: c.github?.pushBranches ?? 'tagbox/*',
    })),
  };
}

/** "443, 8443" → [443, 8443]; a part that is not a number goes as typed, for the server to name. */
function hostOf(row: HostRow): HostInput {
  const parts = row.ports.split(/[\s,]+/).filter(Boolean);
  const host = row.host.trim();
  if (parts.length === 0) return host;
  return { host, ports: parts.map((p) => (/^\d+$/.test(p) ? Number(p) : p)) as number[] };
}

export function bodyOf(d: BundleDraft): { description: string; domains: HostInput[]; connections: Connection[] } {
  return {
    description: d.description,
    domains: d.domains.map(hostOf),
    connections: d.connections.map((c) => {
      if (c.injectKind === 'github') return githubBody(c);
      const narrow = {
        ...(c.narrowHost.trim() ? { host: c.narrowHost.trim() } : {}),
        ...(c.pathPrefix.trim() ? { pathPrefix: c.pathPrefix.trim() } : {}),
        ...(c.readOnly ? { readOnly: true } : {}),
      };
      return {
        name: c.name.trim(),
        secret: c.secret.trim(),
        allowedWebsites: c.websites.map(hostOf),
        inject: c.injectKind === 'basic' ? { basic: { username: c.username } } : { header: c.header.trim(), value: c.value },
        ...(Object.keys(narrow).length ? { narrow } : {}),
        ...(c.plainHttp ? { plainHttp: true } : {}),
      };
    }),
  };
}

/** A GitHub App connection: only its settings go (its websites and injection are the server's to fill in). */
function githubBody(c: ConnectionDraft): Connection {
  const repositories = c.repositories.split(/[\s,]+/).filter(Boolean);
  // "contents: write" pairs; a part that is not one goes as typed, for the server to name.
  const permissions = Object.fromEntries(
    c.permissions
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)
      .map((part) => {
        const [key, value] = part.split(/\s*[:=]\s*/, 2);
        return [key ?? part, value ?? ''];
      }),
  );
  return {
    name: c.name.trim(),
    secret: c.secret.trim(),
    github: {
      ...(repositories.length ? { repositories } : {}),
      ...(Object.keys(permissions).length ? { permissions } : {}),
      pushBranches: c.pushBranches.trim(),
    },
  };
}

/** Every field the form shows, by the path the server would name it with. */
export function fieldsOf(d: BundleDraft): string[] {
  const fields = ['name', 'description', 'domains'];
  d.domains.forEach((_, i) => fields.push(`domains[${i}]`, `domains[${i}].ports`));
  fields.push('connections');
  d.connections.forEach((c, i) => {
    const p = `connections[${i}]`;
    if (c.injectKind === 'github') {
      fields.push(p, `${p}.name`, `${p}.secret`, `${p}.github`, `${p}.github.repositories`, `${p}.github.permissions`, `${p}.github.pushBranches`);
      c.repositories.split(/[\s,]+/).filter(Boolean).forEach((_, j) => fields.push(`${p}.github.repositories[${j}]`));
      return;
    }
    fields.push(p, `${p}.name`, `${p}.secret`, `${p}.allowedWebsites`, `${p}.inject`, `${p}.narrow.host`, `${p}.narrow.pathPrefix`, `${p}.narrow.readOnly`, `${p}.plainHttp`);
    fields.push(...(c.injectKind === 'basic' ? [`${p}.inject.basic`] : [`${p}.inject.header`, `${p}.inject.value`]));
    c.websites.forEach((_, j) => fields.push(`${p}.allowedWebsites[${j}]`, `${p}.allowedWebsites[${j}].ports`));
  });
  return fields;
}
