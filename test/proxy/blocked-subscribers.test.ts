import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockedEvent } from '../../src/proxy/blocked-event.js';
import { BlockedSubscribers } from '../../src/proxy/blocked-subscribers.js';
import type { GithubEvent } from '../../src/proxy/github-event.js';
import type { FeedLine } from '../../src/server/control-protocol.js';

/**
 * The daemon's fan-out of blocked events, over real Unix sockets: every
 * subscriber hears of what the throttle held back, and one that does not read
 * costs the proxy a bounded amount of memory (its events are counted instead).
 */
let dir: string;
let server: Server;
let accepted: Socket[];
const clients: Socket[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tagbox-feed-'));
  accepted = [];
  server = createServer((s) => accepted.push(s));
  await new Promise<void>((resolve) => server.listen(join(dir, 'feed.sock'), resolve));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** A connected pair: the proxy's end (for BlockedSubscribers) and a reader collecting lines. */
async function pair(): Promise<{ proxyEnd: Socket; client: Socket; lines: FeedLine[] }> {
  const before = accepted.length;
  const client = createConnection(join(dir, 'feed.sock'));
  clients.push(client);
  await new Promise((resolve) => client.once('connect', resolve));
  await until(() => accepted.length > before);
  const lines: FeedLine[] = [];
  let buffer = '';
  client.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
      lines.push(JSON.parse(buffer.slice(0, end)) as FeedLine);
      buffer = buffer.slice(end + 1);
    }
  });
  return { proxyEnd: accepted[before]!, client, lines };
}

const event = (host: string, ts = '2026-01-01T00:00:00.000Z'): BlockedEvent => ({
  session: 'thread-1',
  ts,
  method: 'GET',
  scheme: 'https',
  host,
  port: 443,
  path: `/${'p'.repeat(200)}`,
  reason: `host ${host} is not allowed by any bundle`,
});

const blockedOf = (lines: FeedLine[]) => lines.filter((l) => l.event === 'blocked');
const droppedOf = (lines: FeedLine[]) => lines.reduce((n, l) => n + (l.event === 'dropped' ? l.count : 0), 0);

describe('BlockedSubscribers', () => {
  it('sends what the throttle lets through to every subscriber, and tells each what it held back', async () => {
    const subs = new BlockedSubscribers();
    const a = await pair();
    const b = await pair();
    subs.add(a.proxyEnd);
    subs.add(b.proxyEnd);
    // The same host ten times within the same millisecond: one goes out, nine are counted.
    for (let i = 0; i < 10; i++) subs.publish(event('hammered.test'));
    await until(() => droppedOf(a.lines) === 9 && droppedOf(b.lines) === 9);
    for (const { lines } of [a, b]) {
      expect(blockedOf(lines)).toEqual([{ event: 'blocked', ...event('hammered.test') }]);
      expect(lines.filter((l) => l.event === 'dropped')).toEqual([{ event: 'dropped', session: 'thread-1', count: 9 }]);
    }
    subs.close();
  });

  it('a subscriber that does not read is not buffered for without bound: its events are dropped and counted', async () => {
    const maxBufferedBytes = 16 * 1024;
    const subs = new BlockedSubscribers({ maxBufferedBytes, limits: { perKeyMs: 0, perSession: Number.MAX_SAFE_INTEGER } });
    const slow = await pair();
    slow.client.pause();
    subs.add(slow.proxyEnd);
    const total = 20_000;
    const line = Buffer.byteLength(`${JSON.stringify({ event: 'blocked', ...event('h00000.test') })}\n`);
    let most = 0;
    for (let i = 0; i < total; i++) {
      subs.publish(event(`h${String(i).padStart(5, '0')}.test`));
      most = Math.max(most, slow.proxyEnd.writableLength);
    }
    // Several MB were offered; at most the cap and one line were ever queued.
    expect(total * line).toBeGreaterThan(100 * maxBufferedBytes);
    expect(most).toBeLessThanOrEqual(maxBufferedBytes + line);
    slow.client.resume();
    // Nothing is unaccounted for: each event was either sent or counted as dropped.
    await until(() => blockedOf(slow.lines).length + droppedOf(slow.lines) === total, 20_000);
    expect(droppedOf(slow.lines)).toBeGreaterThan(0);
    subs.close();
  });

  const pushed = (i: number): GithubEvent => ({
    session: 'thread-1',
    ts: '2026-01-01T00:00:00.000Z',
    kind: 'push',
    repository: 'acme/widgets',
    refs: [{ ref: `refs/heads/tagbox/r${i}`, action: 'update', oldOid: 'a'.repeat(40), newOid: 'b'.repeat(40), ok: true }],
  });
  const githubOf = (lines: FeedLine[]) => lines.filter((l) => l.event === 'github');

  it('publishGithub: each event goes to every subscriber as a github line, unthrottled', async () => {
    const subs = new BlockedSubscribers();
    const a = await pair();
    const b = await pair();
    subs.add(a.proxyEnd);
    subs.add(b.proxyEnd);
    const pr: GithubEvent = { session: 'thread-1', ts: '2026-01-01T00:00:00.000Z', kind: 'pull-request', repository: 'acme/widgets', number: 42, url: 'https://github.com/acme/widgets/pull/42', title: 'Fix' };
    // Ten in the same millisecond for one session: the blocked feed's throttle does not apply.
    for (let i = 0; i < 10; i++) subs.publishGithub(pushed(i));
    subs.publishGithub(pr);
    await until(() => githubOf(a.lines).length === 11 && githubOf(b.lines).length === 11);
    for (const { lines } of [a, b]) {
      expect(githubOf(lines)).toEqual([...Array.from({ length: 10 }, (_, i) => ({ event: 'github', ...pushed(i) })), { event: 'github', ...pr }]);
      expect(lines.filter((l) => l.event !== 'github')).toEqual([]);
    }
    // Nobody listening: nothing to do, nothing kept.
    const none = new BlockedSubscribers();
    expect(() => none.publishGithub(pr)).not.toThrow();
    subs.close();
  });

  it("publishGithub: a slow subscriber's events are counted as missed, not buffered, while a reading one gets them all", async () => {
    const maxBufferedBytes = 16 * 1024;
    const subs = new BlockedSubscribers({ maxBufferedBytes });
    const slow = await pair();
    const fast = await pair();
    slow.client.pause();
    subs.add(slow.proxyEnd);
    subs.add(fast.proxyEnd);
    const total = 5_000;
    const line = Buffer.byteLength(`${JSON.stringify({ event: 'github', ...pushed(0) })}\n`);
    let most = 0;
    // In bursts the reading subscriber drains between; the one that does not read backs up.
    for (let i = 0; i < total; i++) {
      subs.publishGithub(pushed(i));
      most = Math.max(most, slow.proxyEnd.writableLength);
      if (i % 25 === 24) await until(() => fast.proxyEnd.writableLength === 0);
    }
    expect(total * line).toBeGreaterThan(10 * maxBufferedBytes);
    expect(most).toBeLessThanOrEqual(maxBufferedBytes + line);
    await until(() => githubOf(fast.lines).length === total, 20_000);
    slow.client.resume();
    // Each was sent or counted; some were counted, and what was sent came in order.
    await until(() => githubOf(slow.lines).length + droppedOf(slow.lines) === total, 20_000);
    expect(droppedOf(slow.lines)).toBeGreaterThan(0);
    expect(slow.lines.filter((l) => l.event === 'dropped').every((l) => l.event === 'dropped' && l.session === 'thread-1')).toBe(true);
    const refs = githubOf(slow.lines).map((l) => (l.event === 'github' && l.kind === 'push' ? Number(l.refs[0]!.ref.split('/r').at(-1)) : -1));
    expect([...refs].sort((x, y) => x - y)).toEqual(refs);
    expect(droppedOf(fast.lines)).toBe(0);
    subs.close();
  });

  it('close() ends every subscription', async () => {
    const subs = new BlockedSubscribers();
    const a = await pair();
    subs.add(a.proxyEnd);
    expect(subs.count).toBe(1);
    const closed = new Promise((resolve) => a.client.once('close', resolve));
    subs.close();
    await closed;
    expect(subs.count).toBe(0);
  });

  it('forgets a subscriber whose connection is gone', async () => {
    const subs = new BlockedSubscribers();
    const a = await pair();
    subs.add(a.proxyEnd);
    const gone = new Promise((resolve) => a.proxyEnd.once('close', resolve));
    a.client.destroy();
    await gone;
    expect(subs.count).toBe(0);
    expect(() => subs.publish(event('after.test'))).not.toThrow();
  });
});

async function until(fn: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
