/**
 * A connected Slack team, as the surface sees it (CONTRACT.md "Slack"). The
 * tokens are vault names: only the Agent Proxy opens them, on the listener it
 * keeps for this workspace's Web API calls (slack-api-policy.ts).
 */
export const SLACK_MODES = ['socket', 'events'] as const;
export type SlackMode = (typeof SLACK_MODES)[number];

export interface SlackWorkspace {
  /** Tagbox's workspace id. */
  workspaceId: string;
  orgId: string;
  /** Slack's team id (`T…`): the workspace's externalId. */
  teamId: string;
  name: string;
  mode: SlackMode;
  /** Vault name of the bot token (`xoxb-…`), injected for every Web API call. */
  botTokenSecret: string;
  /** Vault name of the app-level token (`xapp-…`), injected for `apps.connections.open` alone (Socket Mode). */
  appTokenSecret?: string;
  /** The bot's own user id (from `auth.test`), once known: its messages are ignored, its mention is a tag. */
  botUserId?: string;
}

/** Where a session's thread lives in Slack. */
export interface SlackThreadRef {
  sessionId: string;
  workspaceId: string;
  channel: string;
  threadTs: string;
}
