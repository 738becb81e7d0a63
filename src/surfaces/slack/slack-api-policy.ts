import type { Bundle } from '../../policy/bundle-schema.js';
import { SECRET_PLACEHOLDER } from '../../policy/bundle-schema.js';
import type { SlackWorkspace } from './model.js';

/**
 * The policy of a Slack workspace's own listener at the Agent Proxy: the one
 * way the server reaches Slack (invariant 4 extended to the surface: the
 * server holds no Slack token; it sends a placeholder and the proxy replaces
 * the Authorization header). Pure; the proxy builds it from the workspace row
 * itself, so the server cannot point a token anywhere else.
 *   - the app-level token goes to `apps.connections.open` alone (Socket Mode's URL);
 *   - the bot token to every other Web API method, and to files.slack.com (file
 *     downloads in a thread, uploads of long output);
 *   - Socket Mode's WebSocket hosts are reachable without a credential (its URL carries a ticket).
 */
export const SLACK_API_HOST = 'slack.com';
export const SLACK_FILES_HOST = 'files.slack.com';
export const SLACK_SOCKET_HOSTS = '*.slack.com';
export const SLACK_BUNDLE = 'tagbox-slack';
export const APP_TOKEN_PATH = '/api/apps.connections.open';

/** The listener's session name at the proxy (its audit events carry it). */
export function slackListenerSession(workspaceId: string): string {
  return `slack:${workspaceId}`;
}

export function slackApiBundle(workspace: Pick<SlackWorkspace, 'botTokenSecret' | 'appTokenSecret'>): Bundle {
  const bearer = { header: 'Authorization', value: `Bearer ${SECRET_PLACEHOLDER}` };
  return {
    name: SLACK_BUNDLE,
    domains: [{ host: SLACK_SOCKET_HOSTS, ports: [443] }],
    connections: [
      {
        name: 'slack-bot',
        secret: workspace.botTokenSecret,
        allowedWebsites: [
          { host: SLACK_API_HOST, ports: [443] },
          { host: SLACK_FILES_HOST, ports: [443] },
        ],
        inject: bearer,
      },
      ...(workspace.appTokenSecret
        ? [
            {
              name: 'slack-app',
              secret: workspace.appTokenSecret,
              allowedWebsites: [{ host: SLACK_API_HOST, ports: [443] }],
              inject: bearer,
              narrow: { host: SLACK_API_HOST, pathPrefix: APP_TOKEN_PATH },
            },
          ]
        : []),
    ],
  };
}
