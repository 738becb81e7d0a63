import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../../helpers/backends.js';
import { startSlackHarness, type SlackHarness } from './slack-harness.js';

/**
 * The Slack surface end to end, in both modes and on both stores: what a
 * person does in Slack, through the real client libraries and the real Agent
 * Proxy to the fake Slack, and what comes back in the thread.
 */
const TIMEOUT = 120_000;
const CHANNEL = 'C0ENG';
const ALICE = 'UALICE';
const BOB = 'UBOB';

for (const backend of BACKENDS) {
  for (const mode of ['socket', 'events'] as const) {
    describe(`Slack (${mode} mode, ${backend})`, () => {
      let s: SlackHarness;
      const bot = () => `<@${s.fake.botUserId}>`;
      const botPosts = (threadTs: string) => s.fake.messages(CHANNEL, threadTs).filter((m) => m.user === s.fake.botUserId);
      const answered = (channel: string, threadTs: string, text: string) =>
        s.h.until(`"${text}" in the thread`, async () => s.fake.messages(channel, threadTs).find((m) => m.user === s.fake.botUserId && m.text.includes(text)), 60_000);

      beforeAll(async () => {
        s = await startSlackHarness(backend, mode);
        s.fake.addUser({ id: ALICE, name: 'alice' });
        s.fake.addUser({ id: BOB, name: 'bob' });
        s.fake.addChannel({ id: CHANNEL, name: 'eng' });
      }, TIMEOUT);
      afterAll(async () => s?.close(), TIMEOUT);

      it('answers a mention in the thread, streamed, and a reply in the thread continues the same session', async () => {
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} echo first &amp;&amp; echo "a &gt; b"` });
        await answered(CHANNEL, ts, 'a > b'.replace('>', '&gt;'));
        // The receipt, in the thread's first message: a reaction.
        expect(s.fake.reactions.some((r) => r.channel === CHANNEL && r.ts === ts)).toBe(true);
        expect(s.fake.statuses.some((st) => st.threadTs === ts && st.status !== '')).toBe(true);
        const thread = await s.h.store.db.selectFrom('slack_threads').selectAll().where('thread_ts', '=', ts).executeTakeFirstOrThrow();
        const session = await s.h.store.db.selectFrom('sessions').selectAll().where('id', '=', thread.session_id).executeTakeFirstOrThrow();
        expect(session.place).toMatch(/^channel:/);
        expect(session.identity).toBe('agent');

        // No mention: a reply in a thread the agent is in still reaches it.
        await s.say({ channel: CHANNEL, user: BOB, text: 'echo second', threadTs: ts });
        await answered(CHANNEL, ts, 'second');
        const sessions = await s.h.store.db.selectFrom('slack_threads').select('session_id').where('thread_ts', '=', ts).execute();
        expect(sessions).toHaveLength(1);
        const turns = await s.h.store.db.selectFrom('turns').select('id').where('session_id', '=', thread.session_id).execute();
        expect(turns.length).toBe(2);
        // Every post of the agent is in the thread.
        expect(s.fake.messages(CHANNEL).filter((m) => m.user === s.fake.botUserId && !m.threadTs)).toEqual([]);
      }, TIMEOUT);

      it('ignores a message that neither tags the agent nor is in one of its threads, and its own and other bots\' messages', async () => {
        const before = s.fake.calls.filter((c) => c.method === 'chat.postMessage' || c.method === 'chat.startStream').length;
        await s.say({ channel: CHANNEL, user: ALICE, text: 'echo not-for-the-agent' });
        const { payloads } = s.fake.userMessage({ channel: CHANNEL, user: s.fake.botUserId, text: `${bot()} echo self` });
        for (const p of payloads) await s.send(p);
        await new Promise((resolve) => setTimeout(resolve, 1500));
        expect(s.fake.calls.filter((c) => c.method === 'chat.postMessage' || c.method === 'chat.startStream').length).toBe(before);
      }, TIMEOUT);

      it('answers a retried and a duplicated delivery once', async () => {
        const { ts, payloads } = s.fake.userMessage({ channel: CHANNEL, user: ALICE, text: `${bot()} echo once-only` });
        // app_mention and message for one ts, each delivered, then each retried.
        for (const p of payloads) await s.send(p);
        for (const p of payloads) await s.send(p, { retryNum: 1 });
        await answered(CHANNEL, ts, 'once-only');
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const turns = await s.h.store.db
          .selectFrom('turns')
          .innerJoin('slack_threads', 'slack_threads.session_id', 'turns.session_id')
          .select('turns.id')
          .where('slack_threads.thread_ts', '=', ts)
          .execute();
        expect(turns).toHaveLength(1);
        expect(botPosts(ts).filter((m) => m.text.includes('once-only'))).toHaveLength(1);
      }, TIMEOUT);

      it('runs a DM as the member, and refuses a group DM in its thread', async () => {
        s.fake.addChannel({ id: 'D0ALICE', type: 'im', user: ALICE });
        const ts = await s.say({ channel: 'D0ALICE', user: ALICE, text: 'echo in-dm' });
        await answered('D0ALICE', ts, 'in-dm');
        const thread = await s.h.store.db.selectFrom('slack_threads').selectAll().where('thread_ts', '=', ts).executeTakeFirstOrThrow();
        const session = await s.h.store.db.selectFrom('sessions').selectAll().where('id', '=', thread.session_id).executeTakeFirstOrThrow();
        expect(session.identity).toBe('member');
        const alice = await s.h.store.db.selectFrom('members').selectAll().where('external_id', '=', ALICE).where('workspace_id', '=', s.workspaceId).executeTakeFirstOrThrow();
        expect(session.place).toBe(`dm:${alice.id}`);

        s.fake.addChannel({ id: 'G0GROUP', name: 'mpdm-alice--bob', type: 'mpim' });
        const group = await s.say({ channel: 'G0GROUP', user: ALICE, text: `${bot()} echo hi` });
        await answered('G0GROUP', group, 'group DMs');
      }, TIMEOUT);

      it('refuses a DM while DMs are off, saying so in the thread', async () => {
        await s.h.access.updateOrgSettings(s.h.owner.id, s.h.orgId, { dmsAllowed: false });
        try {
          const ts = await s.say({ channel: 'D0ALICE', user: ALICE, text: 'echo while-off' });
          await answered('D0ALICE', ts, 'turned off direct messages');
          expect(s.fake.messages('D0ALICE', ts).some((m) => m.text.includes('while-off') && m.user === s.fake.botUserId)).toBe(false);
        } finally {
          await s.h.access.updateOrgSettings(s.h.owner.id, s.h.orgId, { dmsAllowed: true });
        }
      }, TIMEOUT);

      it('neutralises <!channel> and other pings in what the agent posts', async () => {
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} printf '%s\\n' '&lt;!channel&gt; &lt;!here&gt; @everyone &lt;@UBOB&gt; done-pinging'` });
        const reply = await answered(CHANNEL, ts, 'done-pinging');
        const all = botPosts(ts).map((m) => m.text).join('\n');
        expect(reply.text).toContain('&lt;!channel&gt;');
        for (const ping of ['<!channel>', '<!here>', '<@UBOB>']) expect(all).not.toContain(ping);
        expect(all).not.toMatch(/(^|[^\u200d])@everyone/);
      }, TIMEOUT);

      it('loses and doubles nothing in a storm of 429s', async () => {
        s.fake.rateLimit('*', { times: 12, retryAfterSeconds: 1 });
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} echo storm-1; sleep 1; echo storm-2` });
        const reply = await answered(CHANNEL, ts, 'storm-2');
        expect(reply.text).toContain('storm-1');
        expect(s.fake.calls.filter((c) => c.rateLimited).length).toBeGreaterThanOrEqual(12);
        await new Promise((resolve) => setTimeout(resolve, 1500));
        expect(botPosts(ts).filter((m) => m.text.includes('storm-2'))).toHaveLength(1);
      }, TIMEOUT);

      it('streams the answer where Slack offers it: the stream is started in the thread, appended, then stopped', async () => {
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} echo stream-a; sleep 2; echo stream-b` });
        await answered(CHANNEL, ts, 'stream-b');
        const methods = s.fake.calls.filter((c) => String(c.params.thread_ts ?? '') === ts || String(c.params.channel ?? '') === CHANNEL).map((c) => c.method);
        expect(methods).toContain('chat.startStream');
        expect(methods).toContain('chat.stopStream');
        const streamed = botPosts(ts).find((m) => m.text.includes('stream-b'))!;
        // One message carries the whole answer, in order.
        expect(streamed.text.indexOf('stream-a')).toBeLessThan(streamed.text.indexOf('stream-b'));
        expect(botPosts(ts).filter((m) => m.text.includes('stream-a'))).toHaveLength(1);
      }, TIMEOUT);

      it("runs in a sandbox with the channel's bundles: their host is reachable, another is blocked and the thread says so", async () => {
        await s.h.access.putBundle(s.h.owner.id, s.h.orgId, { name: `echo-${mode}`, domains: [{ host: 'allowed.echo.test' }], connections: [] });
        const channel = await s.h.store.db.selectFrom('channels').select('id').where('external_id', '=', CHANNEL).where('workspace_id', '=', s.workspaceId).executeTakeFirstOrThrow();
        await s.h.access.attach(s.h.owner.id, s.h.orgId, `echo-${mode}`, { kind: 'channel', id: channel.id });
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} curl -s -o /dev/null -w 'allowed=%{http_code}\n' https://allowed.echo.test/; curl -s -o /dev/null -w 'denied=%{http_code}\n' https://denied.echo.test/` });
        const reply = await answered(CHANNEL, ts, 'denied=');
        expect(reply.text).toContain('allowed=200');
        expect(reply.text).not.toContain('denied=200');
        await answered(CHANNEL, ts, 'denied.echo.test');
      }, TIMEOUT);

      it('fetches a file shared with the message into the sandbox, through the proxy', async () => {
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} cat /workspace/slack-files/notes.txt`, files: [{ name: 'notes.txt', content: 'file-content-42\n' }] });
        await answered(CHANNEL, ts, 'file-content-42');
        // Slack's file host saw the bot token; the sandbox was never given a route to Slack.
        expect(s.fake.fileRequests.some((r) => r.method === 'GET' && r.authorization === `Bearer ${s.fake.botToken}` && r.status === 200)).toBe(true);
      }, TIMEOUT);

      it('posts a long answer as a snippet file in the thread, through the proxy', async () => {
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} seq 1 1500; echo long-end` });
        const upload = await s.h.until('the snippet', async () => s.fake.uploads.find((u) => u.threadTs === ts && u.content.includes('long-end')), 60_000);
        expect(upload.content).toContain('\n1500\n');
        expect(upload.content).not.toContain('[object FormData]');
      }, TIMEOUT);

      it('gives the agent the thread it was tagged in the middle of', async () => {
        const root = s.fake.userMessage({ channel: CHANNEL, user: BOB, text: 'the build broke on step three' }).ts;
        s.fake.userMessage({ channel: CHANNEL, user: ALICE, text: 'I saw it too', threadTs: root });
        const ts = await s.say({ channel: CHANNEL, user: ALICE, text: `${bot()} echo tagged-late`, threadTs: root });
        await answered(CHANNEL, root, 'tagged-late');
        const thread = await s.h.store.db.selectFrom('slack_threads').selectAll().where('thread_ts', '=', root).executeTakeFirstOrThrow();
        const context = await s.h.store.db.selectFrom('messages').select(['text', 'context']).where('session_id', '=', thread.session_id).orderBy('created_at').execute();
        expect(context.filter((m) => m.context === 1).map((m) => m.text)).toEqual(['the build broke on step three', 'I saw it too']);
        expect(ts).not.toBe(root);
      }, TIMEOUT);

      if (mode === 'events') {
        it('acknowledges a delivery before the work: the answer comes after the 200', async () => {
          const { ts, payloads } = s.fake.userMessage({ channel: CHANNEL, user: ALICE, text: `${bot()} sleep 3; echo after-the-ack` });
          for (const p of payloads) {
            const r = await s.fake.deliverEvent(s.eventsUrl, p);
            expect(r.status).toBe(200);
          }
          // Answered already, and nothing of the turn is in the thread yet.
          expect(botPosts(ts).some((m) => m.text.includes('after-the-ack'))).toBe(false);
          await answered(CHANNEL, ts, 'after-the-ack');
        }, TIMEOUT);

        it('refuses a forged delivery and acts on nothing of it', async () => {
          const { ts, payloads } = s.fake.userMessage({ channel: CHANNEL, user: ALICE, text: `${bot()} echo forged` });
          const r = await s.fake.deliverEvent(s.eventsUrl, payloads[0], { badSignature: true });
          expect(r.status).toBe(401);
          const stale = await s.fake.deliverEvent(s.eventsUrl, payloads[0], { timestamp: Math.floor(Date.now() / 1000) - 600 });
          expect(stale.status).toBe(401);
          await new Promise((resolve) => setTimeout(resolve, 1000));
          expect(botPosts(ts)).toEqual([]);
          expect(await s.h.store.db.selectFrom('slack_inbox').select('id').where('message_key', '=', `${CHANNEL}:${ts}`).execute()).toEqual([]);
        }, TIMEOUT);
      }
    });
  }
}
