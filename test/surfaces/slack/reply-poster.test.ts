import { LogLevel } from '@slack/logger';
import { WebClient } from '@slack/web-api';
import { Agent, buildConnector } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMember } from '../../../src/access/members-repo.js';
import { createChannel, createWorkspace } from '../../../src/access/workspaces-repo.js';
import { claimPost } from '../../../src/surfaces/slack/slack-posts-repo.js';
import { postMetadata } from '../../../src/surfaces/slack/slack-post.js';
import { saveSlackSettings } from '../../../src/surfaces/slack/slack-workspaces-repo.js';
import { SlackReplyPoster } from '../../../src/surfaces/slack/reply-poster.js';
import { SLACK_RETRY_CONFIG } from '../../../src/surfaces/slack/slack-retry.js';
import { bindThread, threadOfSession } from '../../../src/surfaces/slack/slack-threads-repo.js';
import { WORKING_STATUS } from '../../../src/surfaces/slack/thread-delivery.js';
import { createTestCa, type TestCa } from '../../fixtures/ca.js';
import { startFakeSlack, type FakeSlack, type StoredMessage } from '../../fixtures/fake-slack.js';
import { BACKENDS } from '../../helpers/backends.js';
import { agentTexts, logger, startSessions, type SessionHarness } from '../../sessions/harness.js';

/**
 * The real session layer (shell engine, bubblewrap, proxy daemon, SQLite or
 * Postgres) runs commands in a thread bound to a Slack thread; the poster
 * posts through the real WebClient to the fake Slack, and the tests read what
 * Slack received. The WebClient dials the fake as the proxy's connectTo would.
 */
describe.each(BACKENDS)('SlackReplyPoster (%s)', (name) => {
  let ca: TestCa;
  let fake: FakeSlack;
  let agent: Agent;
  let h: SessionHarness;
  let client: WebClient;
  let alice: string;
  let channel: string;
  const posters: SlackReplyPoster[] = [];

  beforeAll(async () => {
    ca = await createTestCa();
    fake = await startFakeSlack({ ca });
    const connect = buildConnector({ ca: ca.certPem });
    agent = new Agent({ connect: (opts, cb) => connect({ ...opts, servername: opts.hostname, hostname: '127.0.0.1', port: String(fake.port) }, cb) });
    // Node's own fetch with the agent: WebClient builds its upload bodies with Node's FormData, which another fetch would not know.
    const viaFake = ((url: string, init?: RequestInit) => fetch(url, { ...init, dispatcher: agent } as unknown as RequestInit)) as typeof fetch;
    client = new WebClient(fake.botToken, { fetch: viaFake, slackApiUrl: `https://127.0.0.1:${fake.port}/api/`, retryConfig: SLACK_RETRY_CONFIG, logLevel: LogLevel.ERROR });
    h = await startSessions(name);
    alice = fake.addUser({ name: 'alice', realName: 'Alice' }).id;
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await agent?.close();
    await fake?.close();
  });
  afterEach(async () => {
    for (const p of posters.splice(0)) await p.close();
  });

  const poster = (config: { snippetAboveChars?: number } = {}) => {
    const p = new SlackReplyPoster({
      db: h.store.db,
      hub: h.layer.hub,
      clientFor: () => client,
      config: { messagesPerSecond: 1, snippetAboveChars: config.snippetAboveChars ?? 3500, userRefreshMinutes: 60 },
      logger,
      pollMs: 200,
    });
    posters.push(p);
    p.start();
    return p;
  };

  /** A member's message in a fresh Slack channel, its session bound to that thread; returns both. */
  const threadFor = async (command: string) => {
    channel = fake.addChannel({ name: `c${Math.random().toString(36).slice(2, 8)}` }).id;
    const { ts } = fake.userMessage({ channel, user: alice, text: command });
    const said = await h.say(command, { threadKey: ts });
    await bindThread(h.store.db, { sessionId: said.thread, workspaceId: h.workspaceId, channel, threadTs: ts });
    return { ts, thread: said.thread };
  };
  /** The bot's messages in the thread (the member's root left out). */
  const botReplies = (ts: string): StoredMessage[] => fake.messages(channel, ts).filter((m) => m.botId && m.ts !== ts);
  /** Waits until the turn is done and everything it logged reached Slack. */
  const delivered = async (thread: string) => {
    const events = await h.untilDone(thread);
    await h.until('delivery', async () => ((await threadOfSession(h.store.db, thread))?.deliveredSeq ?? 0) >= events.at(-1)!.seq || undefined);
    return events;
  };
  const statusesOf = (ts: string) => fake.statuses.filter((s) => s.channel === channel && s.threadTs === ts).map((s) => s.status);

  it('streams the answer into the thread, ending with the final text, once; status set then cleared', async () => {
    poster();
    const { ts, thread } = await threadFor('echo hi; sleep 1; echo there');
    const events = await delivered(thread);
    const replies = botReplies(ts);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.stream).toBe('stopped');
    expect(replies[0]!.text).toBe('hi\nthere\n[exit code 0]');
    expect(agentTexts(events)).toEqual(['hi\nthere\n[exit code 0]']);
    const methods = fake.calls.filter((c) => c.params.channel === channel).map((c) => c.method);
    expect(methods.filter((m) => m === 'chat.startStream')).toHaveLength(1);
    expect(methods).toContain('chat.appendStream');
    expect(methods.filter((m) => m === 'chat.stopStream')).toHaveLength(1);
    expect(statusesOf(ts)[0]).toBe(WORKING_STATUS);
    expect(statusesOf(ts).at(-1)).toBe('');
    for (const call of fake.calls.filter((c) => c.params.channel === channel && c.method.startsWith('chat.'))) {
      expect(call.authorization).toBe(`Bearer ${fake.botToken}`);
    }
  }, 60_000);

  it('posts a blocked host\'s notice as its own message, and neutralises agent output', async () => {
    poster();
    const { ts, thread } = await threadFor("curl -s -o /dev/null https://blocked-host.example/; echo '<!channel> <@U1> @here done'");
    await delivered(thread);
    const replies = botReplies(ts);
    const notices = replies.filter((m) => m.text.includes('blocked-host.example'));
    expect(notices).toHaveLength(1);
    expect(notices[0]!.stream).toBeUndefined();
    const answer = replies.find((m) => m.stream)!;
    // The session layer already defused the bare @here (a zero-width space); forSlack escapes the markup.
    expect(answer.text).toContain('&lt;!channel&gt; &lt;@U1&gt; @\u200bhere done');
    for (const m of replies) expect(m.text).not.toMatch(/<!|<@|(^|[^\u200b\u200d])@here/);
  }, 60_000);

  it('posts a long output\'s start in the thread and the whole as a snippet', async () => {
    poster({ snippetAboveChars: 600 });
    const { ts, thread } = await threadFor('seq 1 400');
    await delivered(thread);
    const replies = botReplies(ts);
    const answer = replies.find((m) => m.stream)!;
    expect(answer.text.length).toBeLessThan(800);
    expect(answer.text).toContain('(the rest is in the file below)');
    const uploads = fake.uploads.filter((u) => u.channel === channel);
    expect(uploads).toHaveLength(1);
    expect(uploads[0]!.threadTs).toBe(ts);
    expect(uploads[0]!.content).toContain('\n399\n400\n');
    expect(uploads[0]!.content.match(/^400$/gm)).toHaveLength(1);
  }, 60_000);

  it('loses and doubles nothing in a storm of 429s on chat.*', async () => {
    poster();
    for (const method of ['chat.startStream', 'chat.appendStream', 'chat.stopStream', 'chat.postMessage']) fake.rateLimit(method, { times: 6, retryAfterSeconds: 1 });
    const { ts, thread } = await threadFor('echo one; sleep 1; echo two; curl -s -o /dev/null https://stormy.example/');
    await delivered(thread);
    const replies = botReplies(ts);
    expect(replies.filter((m) => m.stream)).toHaveLength(1);
    expect(replies.find((m) => m.stream)!.text).toMatch(/^one\ntwo\n(\[exit code \d+\])?$/);
    expect(replies.filter((m) => m.text.includes('stormy.example'))).toHaveLength(1);
    expect(fake.calls.filter((c) => c.rateLimited && c.params.channel === channel).length).toBeGreaterThanOrEqual(12);
  }, 120_000);

  it('outlasts 20 consecutive 429s with Retry-After 1 on one call', async () => {
    channel = fake.addChannel({ name: 'storm' }).id;
    fake.rateLimit('chat.postMessage', { times: 20, retryAfterSeconds: 1 });
    const { ts } = await client.chat.postMessage({ channel, text: 'after the storm' });
    expect(fake.messages(channel).map((m) => m.text)).toEqual(['after the storm']);
    expect(fake.calls.filter((c) => c.method === 'chat.postMessage' && c.params.channel === channel && c.rateLimited)).toHaveLength(20);
    expect(ts).toBeTruthy();
  }, 60_000);

  it('picks up after a restart mid-answer: nothing twice, nothing lost', async () => {
    const first = poster();
    const { ts, thread } = await threadFor('for i in 1 2 3 4 5 6; do echo line$i; sleep 0.4; done');
    await h.until('the stream to start', async () => botReplies(ts).find((m) => m.stream === 'streaming' && m.text.includes('line1')));
    await first.close();
    poster();
    await delivered(thread);
    const replies = botReplies(ts);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.text).toBe('line1\nline2\nline3\nline4\nline5\nline6\n[exit code 0]');
    expect(statusesOf(ts).at(-1)).toBe('');
  }, 60_000);

  it('finds a post an interrupted attempt made (its key in the thread) instead of posting it again', async () => {
    const p = poster();
    channel = fake.addChannel({ name: 'recovered' }).id;
    const { ts } = fake.userMessage({ channel, user: alice, text: 'hello' });
    const key = `refusal:${channel}:${ts}`;
    // What a crash between the send and its record leaves: the claim, and the message in Slack.
    await claimPost(h.store.db, { workspaceId: h.workspaceId, key, channel });
    const sent = await client.chat.postMessage({ channel, thread_ts: ts, text: 'DMs are off', metadata: postMetadata(key) });
    expect(await p.postRefusal(h.workspaceId, channel, ts, 'DMs are off', key)).toBe(sent.ts);
    expect(await p.postRefusal(h.workspaceId, channel, ts, 'DMs are off', key)).toBe(sent.ts);
    const other = await p.postRefusal(h.workspaceId, channel, ts, 'Group DMs are not supported', `refusal:${channel}:other`);
    expect(botReplies(ts).map((m) => [m.ts, m.text])).toEqual([
      [sent.ts, 'DMs are off'],
      [other, 'Group DMs are not supported'],
    ]);
    await p.acknowledge(h.workspaceId, channel, ts);
    await p.acknowledge(h.workspaceId, channel, ts);
    expect(fake.reactions.filter((r) => r.channel === channel)).toEqual([{ channel, ts, name: 'eyes', user: fake.botUserId }]);
  }, 60_000);

  it('posts and updates where the workspace has no streaming', async () => {
    fake.streaming = false;
    try {
      poster();
      const { ts, thread } = await threadFor('echo a; sleep 1; echo b');
      await delivered(thread);
      const replies = botReplies(ts);
      expect(replies).toHaveLength(1);
      expect(replies[0]!.stream).toBeUndefined();
      expect(replies[0]!.text).toBe('a\nb\n[exit code 0]');
      const methods = fake.calls.filter((c) => c.params.channel === channel).map((c) => c.method);
      expect(methods.filter((m) => m === 'chat.postMessage')).toHaveLength(1);
      expect(methods).toContain('chat.update');
      expect(methods.filter((m) => m === 'chat.startStream')).toHaveLength(1);
    } finally {
      fake.streaming = true;
    }
  }, 60_000);

  it('gives a schedule-started session of a Slack workspace its thread root', async () => {
    const slackWs = (await createWorkspace(h.store.db, { orgId: h.orgId, kind: 'slack', externalId: fake.teamId, name: 'Fake' })).id;
    await saveSlackSettings(h.store.db, slackWs, { mode: 'socket', botTokenSecret: 'slack-bot' });
    channel = fake.addChannel({ name: 'daily' }).id;
    const channelId = (await createChannel(h.store.db, { workspaceId: slackWs, externalId: channel, name: 'daily' })).id;
    const member = await createMember(h.store.db, { workspaceId: slackWs, externalId: alice, displayName: 'Alice', hasAccount: true, roles: [] });
    poster();
    const result = await h.layer.service.invoke({
      workspaceId: slackWs,
      place: { kind: 'channel', channelId },
      memberId: member.id,
      text: "echo 'standup <!here>'",
      trigger: 'schedule',
      dedupeKey: 'schedule:s1:t1',
      schedule: { id: 's1', fireTime: new Date().toISOString() },
    });
    if (result.status !== 'accepted') throw new Error(`refused: ${result.message}`);
    await delivered(result.thread);
    const roots = fake.messages(channel).filter((m) => m.botId);
    expect(roots.map((m) => m.text)).toEqual(["Scheduled by Alice: echo 'standup &lt;!here&gt;'"]);
    const bound = await threadOfSession(h.store.db, result.thread);
    expect(bound).toMatchObject({ workspaceId: slackWs, channel, threadTs: roots[0]!.ts });
    const replies = botReplies(roots[0]!.ts);
    expect(replies.map((m) => m.text)).toEqual(['standup &lt;!here&gt;\n[exit code 0]']);
    const start = fake.calls.find((c) => c.method === 'chat.startStream' && c.params.channel === channel)!;
    expect(start.params).toMatchObject({ recipient_team_id: fake.teamId, recipient_user_id: alice, thread_ts: roots[0]!.ts });
  }, 60_000);
});
