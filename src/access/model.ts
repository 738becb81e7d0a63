import type { GithubSettings } from '../policy/github-settings.js';
/**
 * The access model in DESIGN.md's vocabulary. Repositories return these; rows
 * stay inside src/access/*-repo.ts.
 */
export type MemberAccessPolicy = 'anyone' | 'members' | 'roles';

export interface Org {
  id: string;
  name: string;
  memberAccess: MemberAccessPolicy;
  /** Roles that may invoke the agent when memberAccess = 'roles'. */
  memberAccessRoles: string[];
  dmsAllowed: boolean;
  retentionDays: number;
  zeroDataRetention: boolean;
  /** Custom instructions for the agent, org-wide (a channel's are appended). Empty: none. */
  instructions: string;
  createdAt: string;
  updatedAt: string;
}

export type WorkspaceKind = 'web' | 'slack';

export interface Workspace {
  id: string;
  orgId: string;
  kind: WorkspaceKind;
  externalId: string;
  name: string;
  createdAt: string;
  /** A Slack team's connection (names in the vault, never values). */
  slack?: SlackSettings;
}

/** How a Slack workspace is reached (CONTRACT.md "Slack"); the tokens stay in the vault, opened by the proxy alone. */
export interface SlackSettings {
  mode: 'socket' | 'events';
  botTokenSecret: string;
  appTokenSecret?: string;
}

export interface NewWorkspace {
  orgId: string;
  kind: WorkspaceKind;
  externalId: string;
  name: string;
  slack?: SlackSettings;
}

export interface Channel {
  id: string;
  workspaceId: string;
  externalId: string;
  name: string;
  isPrivate: boolean;
  createdAt: string;
  /** The channel's engine, overriding `agent.engine`. */
  engine?: string;
  /** Custom instructions for the agent in this channel (appended to the org's). */
  instructions?: string;
}

export interface Member {
  id: string;
  workspaceId: string;
  externalId: string;
  displayName: string;
  hasAccount: boolean;
  isGuest: boolean;
  roles: string[];
  createdAt: string;
}

export interface DomainEntry {
  host: string;
  /** Undefined: the default ports (443 and 80). */
  ports?: number[];
}

export type InjectSpec = { header: string; value: string } | { basic: { username: string } };

export interface Narrowing {
  host?: string;
  pathPrefix?: string;
  readOnly?: boolean;
}

export interface ConnectionSpec {
  name: string;
  /** A name in the vault; never the value. */
  secret: string;
  /** Host patterns; an entry with ports is an object, as in bundle files. */
  allowedWebsites: Array<string | DomainEntry>;
  inject: InjectSpec;
  narrow?: Narrowing;
  /** The credential may also be injected over plain HTTP (an explicit opt-in; never for personal connectors). */
  plainHttp?: boolean;
  /** A GitHub App connection's settings (docs/GITHUB.md); its websites and injection are then GitHub's. */
  github?: GithubSettings;
}

/** A personal connector as its owner writes it: the secret name is derived, so it may be left out. */
export type PersonalConnectorSpec = Omit<ConnectionSpec, 'secret'> & { secret?: string };

export interface Connection extends ConnectionSpec {
  id: string;
  orgId: string;
  bundleId: string | null;
  ownerMemberId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface BundleSpec {
  name: string;
  description?: string;
  domains: DomainEntry[];
  connections: ConnectionSpec[];
}

export interface Bundle {
  id: string;
  orgId: string;
  name: string;
  description: string;
  domains: DomainEntry[];
  connections: Connection[];
  createdAt: string;
  updatedAt: string;
}

/** Where a bundle is attached. */
export type Scope = { kind: 'org' } | { kind: 'workspace'; id: string } | { kind: 'channel'; id: string };

export function scopeKey(scope: Scope): string {
  return scope.kind === 'org' ? 'org' : `${scope.kind}:${scope.id}`;
}

export function parseScopeKey(key: string): Scope | undefined {
  if (key === 'org') return { kind: 'org' };
  const match = /^(workspace|channel):(.+)$/.exec(key);
  return match ? { kind: match[1] as 'workspace' | 'channel', id: match[2]! } : undefined;
}
