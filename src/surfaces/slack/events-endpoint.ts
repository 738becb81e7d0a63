import type { FastifyInstance } from 'fastify';
import { checkSlackSignature } from './slack-signature.js';

/** Slack's events are small; anything bigger is not Slack. */
const MAX_EVENT_BYTES = 1024 * 1024;
export const SLACK_EVENTS_PATH = '/slack/events';

export interface EventsEndpointOptions {
  /** slack.signingSecret; absent: the endpoint answers 404 (the Events API is not configured). */
  signingSecret: string | undefined;
  /**
   * Records an `event_callback` payload of team `teamId`; resolves once it is
   * durable (or known a duplicate). The work happens after the answer.
   */
  receive(teamId: string, payload: unknown): Promise<void>;
  now?: () => number;
}

/**
 * `POST /slack/events`, the Events API's request URL. Every request is checked
 * against the signing secret and the 5-minute window first, on the exact bytes
 * received; only then is it parsed. `url_verification` is answered with its
 * challenge; an event is recorded (deduplicated in the inbox) and answered 200
 * at once — Slack wants an answer within 3 seconds and retries otherwise — and
 * processed afterwards. A retry (`X-Slack-Retry-Num`) is recorded like any
 * delivery and dropped there as the duplicate it is.
 */
export function slackEventsEndpoint(options: EventsEndpointOptions) {
  return async (app: FastifyInstance) => {
    // The signature is over the raw body: keep it as text (this plugin's own parsers, encapsulated).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_EVENT_BYTES }, (_request, body, done) => done(null, body));
    app.post(SLACK_EVENTS_PATH, { schema: { hide: true } }, async (request, reply) => {
      const secret = options.signingSecret;
      if (!secret) return reply.code(404).send({ error: 'the Events API is not configured: set slack.signingSecret' });
      const rawBody = typeof request.body === 'string' ? request.body : '';
      const check = checkSlackSignature({
        signingSecret: secret,
        timestamp: header(request.headers['x-slack-request-timestamp']),
        signature: header(request.headers['x-slack-signature']),
        rawBody,
        nowSeconds: Math.floor((options.now?.() ?? Date.now()) / 1000),
      });
      if (!check.ok) return reply.code(401).send({ error: check.reason });
      let payload: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(rawBody);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        payload = parsed as Record<string, unknown>;
      } catch {
        return reply.code(400).send({ error: 'the body is not a JSON object' });
      }
      if (payload.type === 'url_verification') return reply.send({ challenge: typeof payload.challenge === 'string' ? payload.challenge : '' });
      if (payload.type !== 'event_callback') return reply.send({});
      if (typeof payload.team_id !== 'string') return reply.code(400).send({ error: 'team_id: expected the team the event belongs to' });
      // Durable before the answer: a 500 here makes Slack retry, which the inbox turns into one delivery.
      await options.receive(payload.team_id, payload);
      return reply.send({});
    });
  };
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
