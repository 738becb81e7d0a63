import { createHmac } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { slackEventsEndpoint, SLACK_EVENTS_PATH } from '../../../src/surfaces/slack/events-endpoint.js';

/** `POST /slack/events` on a real Fastify server: the signature before anything, then parse, then record. */
const secret = 'the-signing-secret';

describe('the Events API endpoint', () => {
  let app: FastifyInstance;
  let received: Array<{ team: string; payload: unknown }> = [];
  let failNext = false;

  beforeAll(async () => {
    app = Fastify();
    await app.register(
      slackEventsEndpoint({
        signingSecret: secret,
        receive: async (team, payload) => {
          if (failNext) {
            failNext = false;
            throw new Error('the store is down');
          }
          received.push({ team, payload });
        },
      }),
    );
    await app.ready();
  });
  afterAll(async () => app.close());
  beforeEach(() => (received = []));

  const post = (body: string, headers: Record<string, string> = {}, signWith = secret, at = Math.floor(Date.now() / 1000)) =>
    app.inject({
      method: 'POST',
      url: SLACK_EVENTS_PATH,
      payload: body,
      headers: {
        'content-type': 'application/json',
        'x-slack-request-timestamp': String(at),
        'x-slack-signature': `v0=${createHmac('sha256', signWith).update(`v0:${at}:${body}`).digest('hex')}`,
        ...headers,
      },
    });
  const event = (id: string) => JSON.stringify({ type: 'event_callback', team_id: 'T1', event_id: id, event: { type: 'app_mention', text: 'hi' } });

  it('answers url_verification with its challenge', async () => {
    const r = await post(JSON.stringify({ type: 'url_verification', challenge: 'c-123' }));
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ challenge: 'c-123' });
  });

  it('records a signed event and answers 200', async () => {
    const r = await post(event('Ev1'));
    expect(r.statusCode).toBe(200);
    expect(received).toEqual([{ team: 'T1', payload: JSON.parse(event('Ev1')) }]);
  });

  it('refuses a forged, a replayed and an unsigned request before reading it, and records nothing', async () => {
    const forged = await post(event('Ev2'), {}, 'not-the-secret');
    expect(forged.statusCode).toBe(401);
    expect(forged.json().error).toMatch(/does not match/);
    const replayed = await post(event('Ev3'), {}, secret, Math.floor(Date.now() / 1000) - 301);
    expect(replayed.statusCode).toBe(401);
    expect(replayed.json().error).toMatch(/5-minute window/);
    const unsigned = await app.inject({ method: 'POST', url: SLACK_EVENTS_PATH, payload: event('Ev4'), headers: { 'content-type': 'application/json' } });
    expect(unsigned.statusCode).toBe(401);
    // The signature covers the exact bytes: re-serialised JSON with the same meaning is not the same request.
    const body = event('Ev5');
    const at = Math.floor(Date.now() / 1000);
    const sig = `v0=${createHmac('sha256', secret).update(`v0:${at}:${body}`).digest('hex')}`;
    const reordered = await app.inject({
      method: 'POST',
      url: SLACK_EVENTS_PATH,
      payload: body.replace('"team_id":"T1",', '') .replace('}', ',"team_id":"T1"}'),
      headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': String(at), 'x-slack-signature': sig },
    });
    expect(reordered.statusCode).toBe(401);
    expect(received).toEqual([]);
  });

  it('says what is wrong with a signed body that is not an event, and keeps serving', async () => {
    expect((await post('not json')).statusCode).toBe(400);
    expect((await post('[1,2]')).json().error).toMatch(/JSON object/);
    expect((await post(JSON.stringify({ type: 'event_callback', event: {} }))).json().error).toMatch(/team_id/);
    expect((await post(event('Ev6'))).statusCode).toBe(200);
    expect(received).toHaveLength(1);
  });

  it('refuses an oversized body', async () => {
    const r = await post(JSON.stringify({ type: 'event_callback', team_id: 'T1', pad: 'x'.repeat(1024 * 1024) }));
    expect(r.statusCode).toBe(413);
  });

  it('answers 500 when the delivery could not be recorded, so that Slack retries it', async () => {
    failNext = true;
    expect((await post(event('Ev7'))).statusCode).toBe(500);
    expect((await post(event('Ev7'), { 'x-slack-retry-num': '1' })).statusCode).toBe(200);
    expect(received).toHaveLength(1);
  });

  it('answers 404 when the Events API is not configured', async () => {
    const bare = Fastify();
    await bare.register(slackEventsEndpoint({ signingSecret: undefined, receive: async () => undefined }));
    const r = await bare.inject({ method: 'POST', url: SLACK_EVENTS_PATH, payload: event('Ev8'), headers: { 'content-type': 'application/json' } });
    expect(r.statusCode).toBe(404);
    expect(r.json().error).toMatch(/slack.signingSecret/);
    await bare.close();
  });
});
