import { SocketModeClient } from '@slack/socket-mode';
import { LogLevel, WebClient, type FetchFunction, type Logger as SlackLogger, type RetryOptions } from '@slack/web-api';
import type { Logger } from '../../log.js';
import type { SlackTransport } from './slack-transport.js';

/**
 * The Slack client libraries, wired to the Agent Proxy: no token here. The
 * proxy's listener for the workspace replaces the Authorization header with
 * the bot token (the app-level token for apps.connections.open alone).
 */

/** What Socket Mode sends as its app token: a placeholder the proxy replaces (the library insists on one). */
export const APP_TOKEN_PLACEHOLDER = 'xapp-placeholder-the-proxy-injects';

export interface SlackWebClientOptions {
  logger?: Logger;
  /** How calls are retried (default: the library's, ten retries in about thirty minutes). */
  retryConfig?: RetryOptions;
}

export function slackWebClient(transport: SlackTransport, options: SlackWebClientOptions = {}): WebClient {
  return new WebClient(undefined, {
    fetch: transport.fetch as FetchFunction,
    // A 429 waits its Retry-After and tries again (nothing lost, nothing doubled: one call, one answer).
    rejectRateLimitedCalls: false,
    // The method name is never a URL: every call goes to Slack's API through the proxy.
    allowAbsoluteUrls: false,
    ...(options.retryConfig ? { retryConfig: options.retryConfig } : {}),
    ...(options.logger ? { logger: slackLogger(options.logger) } : {}),
  });
}

export interface SlackSocketClientOptions {
  logger?: Logger;
  /**
   * The library's own reconnect (default false): when apps.connections.open
   * fails on the wire (the proxy restarting) its retry rejects where no one
   * catches it. SlackConnection reconnects itself, reopening the listener first.
   */
  autoReconnectEnabled?: boolean;
}

export function slackSocketClient(transport: SlackTransport, options: SlackSocketClientOptions = {}): SocketModeClient {
  return new SocketModeClient({
    appToken: APP_TOKEN_PLACEHOLDER,
    // The WebSocket (wss://…slack.com) through the proxy…
    dispatcher: transport.dispatcher,
    // …and apps.connections.open too (its own WebClient), with our FormData-safe fetch.
    clientOptions: { fetch: transport.fetch as FetchFunction, allowAbsoluteUrls: false },
    autoReconnectEnabled: options.autoReconnectEnabled ?? false,
    ...(options.logger ? { logger: slackLogger(options.logger) } : {}),
  });
}

/** Slack's logger interface over ours (the libraries log strings; debug carries request details, never a token). */
export function slackLogger(logger: Logger): SlackLogger {
  const child = logger.child({ component: 'slack-client' });
  const line = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : String(m))).join(' ');
  let level = levelOf(child.level);
  return {
    debug: (...msg: unknown[]) => child.debug(line(msg)),
    info: (...msg: unknown[]) => child.info(line(msg)),
    warn: (...msg: unknown[]) => child.warn(line(msg)),
    error: (...msg: unknown[]) => child.error(line(msg)),
    setLevel: (next: LogLevel) => void (level = next),
    getLevel: () => level,
    setName: () => undefined,
  };
}

function levelOf(pinoLevel: string): LogLevel {
  switch (pinoLevel) {
    case 'trace':
    case 'debug':
      return LogLevel.DEBUG;
    case 'info':
      return LogLevel.INFO;
    case 'warn':
      return LogLevel.WARN;
    default:
      return LogLevel.ERROR;
  }
}
