import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { messageKey, routeEvent } from '../../../src/surfaces/slack/event-route.js';
import { plainText } from '../../../src/surfaces/slack/slack-markup.js';
import { checkSlackSignature } from '../../../src/surfaces/slack/slack-signature.js';

const BOT = 'UBOT1';
const secret = 'signing-secret-for-tests';
const sign = (ts: string, body: string, key = secret) => `v0=${createHmac('sha256', key).update(`v0:${ts}:${body}`).digest('hex')}`;

describe('checkSlackSignature', () => {
  const now = 1_800_000_000;
  const body = '{"type":"event_callback"}';
  const ts = String(now);
  const base = { signingSecret: secret, timestamp: ts, signature: sign(ts, body), rawBody: body, nowSeconds: now };

  it('accepts a fresh request signed with the secret', () => {
    expect(checkSlackSignature(base)).toEqual({ ok: true });
    expect(checkSlackSignature({ ...base, nowSeconds: now + 299 })).toEqual({ ok: true });
    expect(checkSlackSignature({ ...base, nowSeconds: now - 299 })).toEqual({ ok: true });
  });

  it('refuses a replay outside the 5-minute window, either side', () => {
    for (const nowSeconds of [now + 301, now - 301, now + 86_400]) {
      expect(checkSlackSignature({ ...base, nowSeconds })).toEqual({ ok: false, reason: expect.stringContaining('5-minute window') });
    }
  });

  it('refuses another key, a changed body, a changed timestamp, and malformed headers', () => {
    const refused = (input: Partial<typeof base> & { timestamp?: string | undefined; signature?: string | undefined }) => checkSlackSignature({ ...base, ...input }).ok;
    expect(refused({ signature: sign(ts, body, 'another-secret') })).toBe(false);
    expect(refused({ rawBody: `${body} ` })).toBe(false);
    expect(refused({ rawBody: '{"type":"event_callback","x":1}' })).toBe(false);
    const later = String(now + 1);
    expect(refused({ timestamp: later })).toBe(false);
    expect(refused({ signature: undefined })).toBe(false);
    expect(refused({ timestamp: undefined })).toBe(false);
    expect(refused({ timestamp: '17e8' })).toBe(false);
    expect(refused({ signature: sign(ts, body).toUpperCase() })).toBe(false);
    expect(refused({ signature: sign(ts, body).replace('v0=', 'v1=') })).toBe(false);
    expect(refused({ signature: `${sign(ts, body)}00` })).toBe(false);
  });

  it('names what was wrong', () => {
    expect(checkSlackSignature({ ...base, signature: sign(ts, body, 'x') })).toEqual({ ok: false, reason: expect.stringContaining('does not match') });
    expect(checkSlackSignature({ ...base, signature: 'nope' })).toEqual({ ok: false, reason: expect.stringContaining('malformed') });
    expect(checkSlackSignature({ ...base, timestamp: undefined })).toEqual({ ok: false, reason: expect.stringContaining('Timestamp') });
  });
});

describe('routeEvent', () => {
  const message = { type: 'message', user: 'UALICE', text: 'hello', ts: '1700000000.000100', channel: 'C123', channel_type: 'channel' };

  it('reads a person message, its thread and whether the bot is tagged', () => {
    expect(routeEvent(message, BOT)).toMatchObject({ kind: 'message', channel: 'C123', channelType: 'channel', user: 'UALICE', ts: message.ts, mentioned: false });
    expect(routeEvent({ ...message, text: `<@${BOT}> run it` }, BOT)).toMatchObject({ mentioned: true });
    expect(routeEvent({ ...message, type: 'app_mention', text: 'x' }, BOT)).toMatchObject({ mentioned: true });
    expect(routeEvent({ ...message, thread_ts: '1699999999.000001' }, BOT)).toMatchObject({ threadTs: '1699999999.000001' });
    // A thread's root carries thread_ts = its own ts: it is top-level.
    expect(routeEvent({ ...message, thread_ts: message.ts }, BOT)).not.toHaveProperty('threadTs');
  });

  it('tells DMs and group DMs apart, also without channel_type (app_mention)', () => {
    expect(routeEvent({ ...message, channel: 'D1', channel_type: 'im' }, BOT)).toMatchObject({ channelType: 'im' });
    expect(routeEvent({ ...message, channel: 'G1', channel_type: 'mpim' }, BOT)).toMatchObject({ channelType: 'mpim' });
    const { channel_type: _dropped, ...bare } = message;
    expect(routeEvent({ ...bare, type: 'app_mention', channel: 'D9' }, BOT)).toMatchObject({ channelType: 'im' });
    expect(routeEvent({ ...bare, type: 'app_mention', channel: 'G9' }, BOT)).toMatchObject({ channelType: 'group' });
    expect(routeEvent({ ...bare, type: 'app_mention', channel: 'C9' }, BOT)).toMatchObject({ channelType: 'channel' });
  });

  it("ignores the agent's own messages, other bots, edits and deletions, and malformed events", () => {
    const ignored = (event: unknown) => routeEvent(event, BOT).kind;
    expect(ignored({ ...message, user: BOT })).toBe('ignore');
    expect(ignored({ ...message, bot_id: 'B1' })).toBe('ignore');
    expect(ignored({ ...message, bot_profile: { id: 'B1' } })).toBe('ignore');
    for (const subtype of ['message_changed', 'message_deleted', 'bot_message', 'channel_join', 'message_replied']) expect(ignored({ ...message, subtype })).toBe('ignore');
    expect(ignored({ ...message, subtype: 'file_share' })).toBe('message');
    expect(ignored({ ...message, subtype: 'thread_broadcast' })).toBe('message');
    for (const bad of [null, 'x', [], { ...message, type: 'reaction_added' }, { ...message, user: undefined }, { ...message, user: 'lower' }, { ...message, ts: 'now' }, { ...message, channel: '' }]) {
      expect(ignored(bad)).toBe('ignore');
    }
  });

  it('keeps file references with a download URL only, at most 20', () => {
    const files = [{ id: 'F1', name: 'a.txt', size: 3, url_private_download: 'https://files.slack.com/a' }, { id: 'F2' }, 'junk'];
    expect(routeEvent({ ...message, files }, BOT)).toMatchObject({ files: [{ id: 'F1', name: 'a.txt', size: 3, url: 'https://files.slack.com/a' }] });
    const many = Array.from({ length: 30 }, (_, i) => ({ id: `F${i}`, url_private_download: `https://files.slack.com/${i}` }));
    expect((routeEvent({ ...message, files: many }, BOT) as { files: unknown[] }).files).toHaveLength(20);
  });

  it('keys a message by channel and ts, the same for app_mention and message', () => {
    expect(messageKey('C1', '1.2')).toBe('C1:1.2');
  });
});

describe('plainText', () => {
  it('undoes Slack escaping, so a shell sees what was typed', () => {
    expect(plainText('echo a &gt; b &amp;&amp; cat &lt; b', BOT)).toBe('echo a > b && cat < b');
    expect(plainText('&amp;lt;', BOT)).toBe('&lt;');
  });
  it('removes the tag and renders mentions, channels and links as text', () => {
    expect(plainText(`<@${BOT}> hi <@UALICE|alice> in <#C1|eng> see <https://x.example/a?b=1|the doc>`, BOT)).toBe('hi @alice in #eng see https://x.example/a?b=1');
    expect(plainText('<@UALICE> <#C1> <mailto:a@b.c|a@b.c> <!here> <!subteam^S1|@devs>', BOT)).toBe('@UALICE #C1 mailto:a@b.c @here @devs');
    expect(plainText(`<@${BOT}>`, BOT)).toBe('');
  });
});
