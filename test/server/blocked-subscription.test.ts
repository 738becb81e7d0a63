import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockedEvent } from '../../src/proxy/blocked-event.js';
import type { GithubEvent } from '../../src/proxy/github-event.js';
import type { DroppedReport } from '../../src/server/blocked-subscription.js';
import { MAX_CONTROL_LINE } from '../../src/server/control-protocol.js';
import { ProxyControl } from '../../src/server/proxy-control.js';

/**
 * The server's side of the feed against a hostile or broken peer on a real
 * Unix socket (the real proxy is in proxy-blocked-feed.test.ts): what the
 * proxy sends is data, checked line by line; bad lines are dropped, an
 * over-long one ends the connection, and the client comes back.
 */
let dir: string;
let socketPath: string;
let server: Server | undefined;
let connections: Socket[];
let requests: string[];
let subscription: { close(): void } | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tagbox-sub-'));
  socketPath = join(dir, 'control.sock');
  connections = [];
  requests = [];
});
afterEach(async () => {
  subscription?.close();
  subscription = undefined;
  await stopPeer();
  rmSync(dir, { recursive: true, force: true });
});

/** A stand-in proxy: records what each connection asks and answers with `greeting`. */
async function startPeer(greeting = '{"ok":true}\n'): Promise<void> {
  server = createServer((socket) => {
    connections.push(socket);
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => {
      requests.push(c.toString('utf8'));
      socket.write(greeting);
    });
  });
  await new Promise<void>((resolve) => server!.listen(socketPath, resolve));
}

async function stopPeer(): Promise<void> {
  for (const c of connections) c.destroy();
  if (server) await new Promise((resolve) => server!.close(resolve));
  server = undefined;
}

const good: BlockedEvent = {
  session: 'thread-1',
  ts: '2026-01-01T00:00:00.000Z',
  method: 'GET',
  scheme: 'https',
  host: 'blocked.example',
  port: 443,
  path: '/x',
  reason: 'host blocked.example is not allowed by any bundle',
};
const line = (value: unknown) => `${JSON.stringify(value)}\n`;

function subscribe() {
  const events: BlockedEvent[] = [];
  const dropped: DroppedReport[] = [];
  const errors: string[] = [];
  const github: GithubEvent[] = [];
  let subscribed = 0;
  subscription = new ProxyControl(socketPath).subscribeBlocked(
    (e) => {
      if (e.host === 'throws.example') throw new Error('callback failed');
      events.push(e);
    },
    (d) => dropped.push(d),
    {
      onError: (e) => errors.push(e.message),
      onSubscribed: () => (subscribed += 1),
      onGithub: (g) => {
        if (g.repository === 'acme/throws') throw new Error('github callback failed');
        github.push(g);
      },
    },
  );
  return { events, dropped, errors, github, subscribed: () => subscribed };
}

describe('ProxyControl.subscribeBlocked', () => {
  it('asks for the feed, passes well-formed lines on and drops every malformed one', async () => {
    await startPeer();
    const feed = subscribe();
    await until(() => feed.subscribed() === 1);
    expect(requests).toEqual([line({ op: 'subscribe-blocked' })]);
    const peer = connections[0]!;
    peer.write(
      [
        'not json\n',
        line(null),
        line([1, 2]),
        line({ event: 'blocked' }),
        line({ event: 'surprise', ...good }),
        line({ event: 'blocked', ...good, port: 70000 }),
        line({ event: 'blocked', ...good, port: '443' }),
        line({ event: 'blocked', ...good, scheme: 'gopher' }),
        line({ event: 'blocked', ...good, ts: 'yesterday' }),
        line({ event: 'blocked', ...good, host: 'h'.repeat(300) }),
        line({ event: 'blocked', ...good, reason: 'r'.repeat(600) }),
        line({ event: 'blocked', ...good, session: '' }),
        line({ event: 'dropped', session: 'thread-1', count: -3 }),
        line({ event: 'dropped', session: 'thread-1' }),
        // A callback that throws does not end the feed.
        line({ event: 'blocked', ...good, host: 'throws.example' }),
        // Unknown fields are not passed on.
        line({ event: 'blocked', ...good, extra: 'smuggled', rule: 'api.example' }),
        line({ event: 'dropped', session: 'thread-1', count: 7 }),
      ].join(''),
    );
    await until(() => feed.dropped.length === 1);
    expect(feed.events).toEqual([{ ...good, rule: 'api.example' }]);
    expect(feed.dropped).toEqual([{ session: 'thread-1', count: 7 }]);
    expect(feed.errors).toEqual(['callback failed']);
  });

  const push: GithubEvent = {
    session: 'thread-1',
    ts: '2026-01-01T00:00:00.000Z',
    kind: 'push',
    repository: 'acme/widgets',
    refs: [{ ref: 'refs/heads/tagbox/thread-1', action: 'update', oldOid: 'a'.repeat(40), newOid: 'b'.repeat(40), ok: true }],
  };
  const pull: GithubEvent = {
    session: 'thread-1',
    ts: '2026-01-01T00:00:01.000Z',
    kind: 'pull-request',
    repository: 'acme/widgets',
    number: 42,
    url: 'https://github.com/acme/widgets/pull/42',
    title: 'Fix the parser',
    head: 'tagbox/thread-1',
    base: 'main',
  };

  it("passes the feed's github lines on to onGithub: a push (SHA-1 or SHA-256 ids) and a pull request", async () => {
    await startPeer();
    const feed = subscribe();
    await until(() => feed.subscribed() === 1);
    const sha256: GithubEvent = { ...push, refs: [{ ref: 'refs/heads/tagbox/x', action: 'create', oldOid: '0'.repeat(64), newOid: 'c'.repeat(64), ok: true }] };
    const { title: _t, head: _h, base: _b, ...bare } = pull as Extract<GithubEvent, { kind: 'pull-request' }>;
    connections[0]!.write([line({ event: 'github', ...push }), line({ event: 'github', ...pull }), line({ event: 'github', ...sha256 }), line({ event: 'github', ...bare, number: 43 })].join(''));
    await until(() => feed.github.length === 4);
    expect(feed.github).toEqual([push, pull, sha256, { ...bare, number: 43 }]);
    expect(feed.events).toEqual([]);
    expect(feed.errors).toEqual([]);
  });

  it('drops malformed github lines and carries on with the feed', async () => {
    await startPeer();
    const feed = subscribe();
    await until(() => feed.subscribed() === 1);
    const ref = (push as Extract<GithubEvent, { kind: 'push' }>).refs[0]!;
    connections[0]!.write(
      [
        line({ event: 'github' }),
        line({ event: 'github', ...push, kind: 'merge' }),
        // A link the web would render: only http(s).
        line({ event: 'github', ...pull, url: 'javascript:alert(1)' }),
        line({ event: 'github', ...pull, url: 'https://github.com/acme/widgets/pull/42 onclick=x' }),
        line({ event: 'github', ...pull, url: `https://github.com/${'u'.repeat(2100)}` }),
        line({ event: 'github', ...pull, number: 4.5 }),
        line({ event: 'github', ...pull, number: '42' }),
        line({ event: 'github', ...pull, number: 0 }),
        line({ event: 'github', ...pull, title: 't'.repeat(400) }),
        line({ event: 'github', ...pull, ts: 'yesterday' }),
        line({ event: 'github', ...pull, session: '' }),
        line({ event: 'github', ...push, refs: [] }),
        line({ event: 'github', ...push, refs: Array.from({ length: 51 }, (_, i) => ({ ...ref, ref: `refs/heads/tagbox/r${i}` })) }),
        line({ event: 'github', ...push, refs: [{ ...ref, newOid: 'g'.repeat(40) }] }),
        line({ event: 'github', ...push, refs: [{ ...ref, oldOid: 'A'.repeat(40) }] }),
        line({ event: 'github', ...push, refs: [{ ...ref, newOid: 'b'.repeat(39) }] }),
        line({ event: 'github', ...push, refs: [{ ...ref, action: 'force' }] }),
        line({ event: 'github', ...push, refs: [{ ...ref, ref: 'r'.repeat(300) }] }),
        line({ event: 'github', ...push, repository: 'a'.repeat(200) }),
        // A callback that throws does not end the feed.
        line({ event: 'github', ...push, repository: 'acme/throws' }),
        // The feed goes on: a blocked line and a good github line after all that.
        line({ event: 'blocked', ...good }),
        line({ event: 'github', ...pull, extra: 'smuggled' }),
      ].join(''),
    );
    await until(() => feed.github.length === 1);
    expect(feed.github).toEqual([pull]);
    expect(feed.events).toEqual([good]);
    expect(feed.errors).toEqual(['github callback failed']);
  });

  it("the most refs a push may carry pass; a title at the proxy's cap (and its '…') passes", async () => {
    await startPeer();
    const feed = subscribe();
    await until(() => feed.subscribed() === 1);
    const ref = (push as Extract<GithubEvent, { kind: 'push' }>).refs[0]!;
    const many: GithubEvent = { ...push, refs: Array.from({ length: 50 }, (_, i) => ({ ...ref, ref: `refs/heads/tagbox/r${i}` })) };
    const capped: GithubEvent = { ...pull, title: `${'t'.repeat(300)}…` };
    connections[0]!.write(line({ event: 'github', ...many }) + line({ event: 'github', ...capped }));
    await until(() => feed.github.length === 2);
    expect(feed.github).toEqual([many, capped]);
  });

  it('an over-long line ends the connection; it reconnects and carries on', async () => {
    await startPeer();
    const feed = subscribe();
    await until(() => feed.subscribed() === 1);
    const first = connections[0]!;
    const closed = new Promise((resolve) => first.once('close', resolve));
    first.write('x'.repeat(MAX_CONTROL_LINE + 10));
    await closed;
    expect(feed.errors.some((e) => e.includes('over-long line'))).toBe(true);
    await until(() => feed.subscribed() === 2);
    connections[1]!.write(line({ event: 'blocked', ...good }));
    await until(() => feed.events.length === 1);
    expect(feed.events).toEqual([good]);
  });

  it('a refusal is reported and retried; a proxy that comes back later is subscribed to', async () => {
    await startPeer(line({ ok: false, error: 'refused: only the Tagbox server may use this socket', code: 'forbidden' }));
    const feed = subscribe();
    await until(() => requests.length >= 2);
    expect(feed.subscribed()).toBe(0);
    expect(feed.errors.some((e) => e.includes('refused: only the Tagbox server'))).toBe(true);
    // The proxy goes away altogether, then a good one takes its socket.
    await stopPeer();
    rmSync(socketPath, { force: true });
    const failures = feed.errors.length;
    await until(() => feed.errors.length > failures);
    await startPeer();
    await until(() => feed.subscribed() === 1);
    connections.at(-1)!.write(line({ event: 'blocked', ...good }));
    await until(() => feed.events.length === 1);
  });

  it('close() stops it for good', async () => {
    await startPeer();
    const feed = subscribe();
    await until(() => feed.subscribed() === 1);
    const gone = new Promise((resolve) => connections[0]!.once('close', resolve));
    subscription!.close();
    await gone;
    // Longer than the longest backoff: nothing comes back.
    await sleep(2_500);
    expect(connections).toHaveLength(1);
  });
});

async function until(fn: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
}
