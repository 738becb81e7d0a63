import type { ColumnType, Generated, Selectable } from 'kysely';

/**
 * The control-plane tables, typed first (Kysely). Portable across SQLite and
 * Postgres: ids are text (UUIDs made by the app), times are ISO-8601 UTC text
 * (they sort as they read), flags are 0/1 integers, structured values are JSON
 * text. Repositories convert to and from domain types; nothing else touches rows.
 */
export interface OrgsTable {
  id: string;
  name: string;
  /** 'anyone' | 'members' | 'roles' */
  member_access: string;
  /** JSON array of role names, used when member_access = 'roles' */
  member_access_roles: string;
  dms_allowed: number;
  retention_days: number;
  zero_data_retention: number;
  created_at: string;
  updated_at: string;
  instructions: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface WorkspacesTable {
  id: string;
  org_id: string;
  /** 'web' | 'slack' */
  kind: string;
  /** The chat platform's own id (Slack team id; 'web' for the built-in one). */
  external_id: string;
  name: string;
  created_at: string;
}

export interface ChannelsTable {
  id: string;
  workspace_id: string;
  external_id: string;
  name: string;
  is_private: number;
  created_at: string;
  /** The channel's engine ('shell' | 'claude'), overriding agent.engine; null: the default. */
  engine: ColumnType<string | null, string | null | undefined, string | null>;
  instructions: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface MembersTable {
  id: string;
  workspace_id: string;
  external_id: string;
  display_name: string;
  /** Has an org account (can sign in to Tagbox), as opposed to a chat user only. */
  has_account: number;
  is_guest: number;
  created_at: string;
}

export interface MemberRolesTable {
  member_id: string;
  role: string;
}

export interface BundlesTable {
  id: string;
  org_id: string;
  name: string;
  description: string;
  created_at: string;
  updated_at: string;
}

export interface BundleDomainsTable {
  bundle_id: string;
  host: string;
  /** JSON array of ports, or null for the defaults (443 and 80). */
  ports: string | null;
}

export interface ConnectionsTable {
  id: string;
  org_id: string;
  /** Set for a bundle's connection; null for a personal connector. */
  bundle_id: string | null;
  /** Set for a personal connector; null for a bundle's connection. */
  owner_member_id: string | null;
  name: string;
  /** A name in the vault; never the value. */
  secret_name: string;
  /** JSON array of host patterns. */
  allowed_websites: string;
  /** JSON: {header, value} | {basic: {username}} */
  inject: string;
  /** JSON narrowing {host?, pathPrefix?, readOnly?} or null. */
  narrow: string | null;
  /** 1: the credential may go over plain HTTP too (an explicit opt-in). */
  plain_http: ColumnType<number, number | undefined, number>;
  /** JSON GitHub App settings {repositories?, permissions?, pushBranches} or null (migration 0014). */
  github: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: string;
  updated_at: string;
}

export interface BundleScopesTable {
  bundle_id: string;
  /** 'org' | 'workspace:<id>' | 'channel:<id>' */
  scope: string;
  created_at: string;
}

export interface AuditEventsTable {
  /** Position in the chain, 1-based, assigned by the single writer discipline. */
  seq: number;
  ts: string;
  type: string;
  outcome: string | null;
  actor: string | null;
  session_id: string | null;
  channel_id: string | null;
  /** The whole event as canonical JSON; what the hash covers. */
  data: string;
  prev_hash: string;
  hash: string;
}

export interface AuditAnchorTable {
  id: number;
  seq: number;
  hash: string;
}

/** Signed checkpoints of the audit chain (src/audit/checkpoint.ts); the signature covers every other column. */
export interface AuditCheckpointsTable {
  seq: number;
  /** 'head' | 'anchor' */
  kind: string;
  hash: string;
  ts: string;
  key_id: string;
  signature: string;
}

/** One row per org: bumped with every access change (see src/access/admin-service.ts). */
export interface PolicyRevisionsTable {
  org_id: string;
  revision: number;
  updated_at: string;
}

/** Admin API tokens (src/server/tokens-repo.ts); the token itself is never stored. */
export interface ApiTokensTable {
  id: string;
  org_id: string;
  member_id: string;
  /** 'owner' | 'admin' | 'member' */
  role: string;
  name: string;
  /** Hex SHA-256 of the token. */
  token_hash: string;
  created_by: string;
  created_at: string;
  last_used_at: string | null;
}

/** A one-time web sign-in link (src/server/web-auth/signin-links.ts). */
export interface WebSigninLinksTable {
  id: string;
  org_id: string;
  member_id: string;
  /** Hex SHA-256 of the link's token. */
  token_hash: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

/** A browser's cookie session (src/server/web-auth/web-sessions.ts). */
export interface WebSessionsTable {
  id: string;
  org_id: string;
  member_id: string;
  /** Hex SHA-256 of the cookie value. */
  session_hash: string;
  /** 'link' | 'oidc' */
  method: string;
  created_at: string;
  expires_at: string;
  last_seen_at: string;
  revoked_at: string | null;
}

export interface MemberEmailsTable {
  member_id: string;
  email: string;
  created_at: string;
}

export interface OidcIdentitiesTable {
  issuer: string;
  subject: string;
  member_id: string;
  email: string | null;
  created_at: string;
}

/** A pending OIDC login, keyed by the hash of its browser cookie. */
export interface OidcLoginsTable {
  id_hash: string;
  state: string;
  nonce: string;
  code_verifier: string;
  next: string;
  created_at: string;
  expires_at: string;
}

/** A running server process (src/sessions/instances.ts): turns and sandboxes are held by one. */
export interface ServerInstancesTable {
  id: string;
  host: string;
  pid: number;
  started_at: string;
  heartbeat_at: string;
  stopped_at: string | null;
}

/** One per thread (src/sessions/sessions-repo.ts). */
export interface SessionsTable {
  id: string;
  org_id: string;
  workspace_id: string;
  /** 'channel:<id>' | 'dm:<member id>' */
  place: string;
  channel_id: string | null;
  dm_member_id: string | null;
  thread_key: string;
  /** 'agent' | 'member' */
  identity: string;
  engine: string;
  created_by: string | null;
  event_seq: ColumnType<number, number | undefined, number>;
  turn_seq: ColumnType<number, number | undefined, number>;
  sandbox_holder: string | null;
  sandbox_since: string | null;
  last_activity_at: string;
  created_at: string;
}

export interface TurnsTable {
  id: string;
  session_id: string;
  org_id: string;
  seq: number;
  /** queued | running | done | cancelled | interrupted | failed */
  status: string;
  /** message | schedule */
  trigger: string;
  triggered_by: string | null;
  holder: string | null;
  cancel_requested_by: string | null;
  detail: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface MessagesTable {
  id: string;
  session_id: string;
  /** member | agent | system */
  author_kind: string;
  author_id: string | null;
  author_name: string | null;
  text: string;
  dedupe_key: string | null;
  turn_id: string | null;
  created_at: string;
  /** 1: an earlier message of the thread a surface supplied as context (0011). */
  context: number;
}

export interface SessionEventsTable {
  session_id: string;
  seq: number;
  /** message | progress | notice | status | usage | error | done */
  type: string;
  turn_id: string | null;
  /** JSON */
  data: string;
  created_at: string;
}

export interface EngineStatesTable {
  session_id: string;
  version: number;
  engine: string;
  /** base64 of a tar.gz of the engine's state directory. */
  data: string;
  bytes: number;
  created_at: string;
}

/** One version of a channel's (or a DM's) memory file. */
export interface MemoryVersionsTable {
  /** 'channel:<channel id>' | 'dm:<member id>' */
  scope: string;
  version: number;
  content: string;
  bytes: number;
  session_id: string;
  turn_id: string | null;
  base_version: number | null;
  created_at: string;
}

export interface ChannelMembersTable {
  channel_id: string;
  member_id: string;
  created_at: string;
}

/** A cron-timed prompt posted into a channel (src/surfaces/schedules/schedules-repo.ts). */
export interface SchedulesTable {
  id: string;
  org_id: string;
  channel_id: string;
  /** The member who created it; each firing acts as if they had typed the prompt. */
  created_by: string;
  cron: string;
  /** IANA time zone the cron expression is read in. */
  timezone: string;
  prompt: string;
  created_at: string;
}

/** One firing of a schedule; the primary key (schedule_id, fire_time) is the exactly-once claim. */
export interface ScheduleRunsTable {
  schedule_id: string;
  /** ISO-8601 UTC */
  fire_time: string;
  /** started | skipped | failed */
  status: string;
  /** The session id of the thread it started, once known. */
  thread: string | null;
  detail: string | null;
  claimed_by: string;
  created_at: string;
}

/** One distinct plugin tree (src/plugins/plugins-repo.ts), shared by every plugin row with that content. */
export interface PluginBlobsTable {
  /** sha256 hex of the canonical encoding (src/plugins/plugin-blob.ts). */
  digest: string;
  /** base64 of gzip of the canonical encoding. */
  data: string;
  /** Bytes of the canonical encoding. */
  size: number;
  created_at: string;
}

/** A Claude Code plugin an admin added to the org under a name. */
export interface PluginsTable {
  id: string;
  org_id: string;
  name: string;
  digest: string;
  /** JSON: {plugin: the parsed plugin.json, counts, files, bytes} */
  manifest: string;
  created_by: string;
  created_at: string;
  updated_at: string;
}

/** Where a plugin applies: the org (scope_id = the org id), a workspace or a channel. */
export interface PluginAttachmentsTable {
  plugin_id: string;
  /** 'org' | 'workspace' | 'channel' */
  scope_kind: string;
  scope_id: string;
  created_at: string;
}

/** One model response the proxy read usage from (src/usage/usage-repo.ts). */
export interface UsageEventsTable {
  id: string;
  org_id: string;
  session_id: string;
  /** org (channel work) | member (DM work) */
  payer_kind: string;
  payer_id: string;
  channel_id: string | null;
  /** The DM's member, for DM work. */
  member_id: string | null;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  /** micro-USD */
  cost: number;
  created_at: string;
}

/** A spend limit (src/usage/budgets-repo.ts); unique per (scope_kind, scope_id, period, unit). */
export interface BudgetsTable {
  id: string;
  org_id: string;
  /** org | channel | member */
  scope_kind: string;
  scope_id: string;
  /** day | month (UTC) */
  period: string;
  /** tokens | cost */
  unit: string;
  /** Tokens, or micro-USD. */
  limit: number;
  updated_at: string;
  updated_by: string;
}

export interface SlackWorkspacesTable {
  workspace_id: string;
  /** 'socket' | 'events' */
  mode: string;
  bot_token_secret: string;
  app_token_secret: string | null;
  bot_user_id: string | null;
  updated_at: string;
}

export interface SlackInboxTable {
  id: string;
  workspace_id: string;
  event_id: string;
  message_key: string | null;
  payload: string;
  /** 'pending' | 'done' | 'failed' */
  status: string;
  outcome: string | null;
  received_at: string;
  done_at: string | null;
}

export interface SlackThreadsTable {
  session_id: string;
  workspace_id: string;
  channel: string;
  thread_ts: string;
  delivered_seq: Generated<number>;
  updated_at: string;
}

export interface SlackPostsTable {
  workspace_id: string;
  key: string;
  channel: string;
  ts: string | null;
  /** 'posting' | 'posted' */
  state: string;
  updated_at: string;
}

/** What a turn left outside the sandbox: a pushed branch or an opened pull request (migration 0014). */
export interface TurnOutputsTable {
  id: string;
  session_id: string;
  turn_id: string;
  /** 'pull-request' | 'branch' */
  kind: string;
  /** owner/repo */
  repository: string;
  /** A pull request's number; a branch's ref (refs/heads/...). */
  ref: string;
  url: string | null;
  title: string | null;
  created_at: string;
}

export interface SlackFilesTable {
  workspace_id: string;
  message_key: string;
  file_id: string;
  session_id: string | null;
  name: string;
  size: number;
  /** base64 */
  content: string;
  created_at: string;
}

export interface SlackUsersTable {
  member_id: string;
  deleted: Generated<number>;
  is_bot: Generated<number>;
  refreshed_at: string;
}

export interface Database {
  orgs: OrgsTable;
  workspaces: WorkspacesTable;
  channels: ChannelsTable;
  members: MembersTable;
  member_roles: MemberRolesTable;
  bundles: BundlesTable;
  bundle_domains: BundleDomainsTable;
  connections: ConnectionsTable;
  bundle_scopes: BundleScopesTable;
  audit_events: AuditEventsTable;
  audit_anchor: AuditAnchorTable;
  audit_checkpoints: AuditCheckpointsTable;
  api_tokens: ApiTokensTable;
  web_signin_links: WebSigninLinksTable;
  web_sessions: WebSessionsTable;
  member_emails: MemberEmailsTable;
  oidc_identities: OidcIdentitiesTable;
  oidc_logins: OidcLoginsTable;
  policy_revisions: PolicyRevisionsTable;
  server_instances: ServerInstancesTable;
  sessions: SessionsTable;
  turns: TurnsTable;
  messages: MessagesTable;
  session_events: SessionEventsTable;
  engine_states: EngineStatesTable;
  channel_members: ChannelMembersTable;
  schedules: SchedulesTable;
  schedule_runs: ScheduleRunsTable;
  memory_versions: MemoryVersionsTable;
  plugin_blobs: PluginBlobsTable;
  plugins: PluginsTable;
  plugin_attachments: PluginAttachmentsTable;
  usage_events: UsageEventsTable;
  budgets: BudgetsTable;
  slack_workspaces: SlackWorkspacesTable;
  slack_inbox: SlackInboxTable;
  slack_threads: SlackThreadsTable;
  slack_posts: SlackPostsTable;
  slack_users: SlackUsersTable;
  slack_files: SlackFilesTable;
  turn_outputs: TurnOutputsTable;
}

export type OrgRow = Selectable<OrgsTable>;
