import type { RetryOptions } from '@slack/web-api';

/**
 * The WebClient's retry policy for Tagbox's Slack calls. On a 429 the client
 * itself waits Retry-After, then fails the attempt so that this policy
 * retries it: the policy's own delay comes on top, so it is short and flat,
 * and there are enough attempts to outlast a long storm (60 consecutive 429s;
 * with Retry-After 1 s, over a minute). The library's default (10 retries with
 * exponential delays) gives up after 10 consecutive 429s, losing the post.
 * Network errors (the proxy restarting) are retried the same way, for about
 * 15 s; past that the call fails and the poster tries the event again later.
 */
export const SLACK_RETRY_CONFIG: RetryOptions = { retries: 60, factor: 1, minTimeout: 250, maxTimeout: 250, randomize: false };
