/** The access API's shapes as the console reads them (docs/API.md: bundles, secrets, plugins, workspaces). */

export interface HostEntry {
  host: string;
  ports?: number[];
}
export type HostInput = string | HostEntry;

export type Inject = { header: string; value: string } | { basic: { username: string } };

export interface Connection {
  name: string;
  secret: string;
  /** Left out for a GitHub App connection (they are GitHub's). */
  allowedWebsites?: HostInput[];
  inject?: Inject;
  narrow?: { host?: string; pathPrefix?: string; readOnly?: boolean };
  plainHttp?: boolean;
  /** A GitHub App connection (docs/GITHUB.md). */
  github?: GithubSettings;
}

export interface GithubSettings {
  repositories?: string[];
  permissions?: Record<string, string>;
  pushBranches?: string;
}

export interface Bundle {
  name: string;
  description: string;
  domains: HostEntry[];
  connections: Connection[];
  /** Scope keys: `org`, `workspace:<id>`, `channel:<id>`. */
  scopes: string[];
  updatedAt: string;
}

export type CredentialKind = 'static' | 'github-app' | 'oauth2-client-credentials' | 'aws-sigv4';

export interface Secret {
  name: string;
  kind: CredentialKind;
  version: number;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
  usedBy: Array<{ bundle: string; connection: string; scopes: string[] }>;
  sent: boolean;
}

export type { Channel, Workspace } from '../places';

export type ScopeRef = { kind: 'org' } | { kind: 'workspace'; id: string } | { kind: 'channel'; id: string };

export interface Plugin {
  name: string;
  digest: string;
  plugin: { name?: string; description?: string; version?: string };
  counts: { skills: number; commands: number; agents: number; hooks: number; mcpServers: number };
  fileCount: number;
  bytes: number;
  attachments: ScopeRef[];
  updatedAt: string;
}

export interface ChannelAccess {
  channel: { id: string; name: string };
  bundles: Array<{
    name: string;
    from: string;
    fromLabel: string;
    scopes?: string[];
    domains: HostInput[];
    connections: Array<{ name: string; secret: string; allowedWebsites: HostInput[]; inject: string; narrow?: Connection['narrow'] }>;
  }>;
  model: { host: string; secret: string } | null;
  plugins: Array<{ name: string; from: string; fromLabel: string }>;
}

export const hostText = (h: HostInput) => (typeof h === 'string' ? h : h.ports ? `${h.host}:${h.ports.join(',')}` : h.host);

export const scopeKeyOf = (s: ScopeRef) => (s.kind === 'org' ? 'org' : `${s.kind}:${s.id}`);

export function scopeRefOf(key: string): ScopeRef {
  if (key === 'org') return { kind: 'org' };
  const [kind, ...rest] = key.split(':');
  return { kind: kind === 'workspace' ? 'workspace' : 'channel', id: rest.join(':') };
}
