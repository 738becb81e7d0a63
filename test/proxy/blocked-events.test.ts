import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockedEvent } from '../../src/proxy/blocked-event.js';
import { DEFAULT_BUNDLES, policyOf, rawExchange, startHarness, statusOf, type Harness } from './harness.js';

/**
 * AgentProxyOptions.onBlocked, over real sockets: called from record.ts for
 * every blocked decision of a listener that has a session (requests, CONNECTs,
 * rejected malformed requests), redacted like the audit event, never for an
 * allowed request or a listener without a session, and never able to break
 * the request path.
 */
let h: Harness;
const seen: BlockedEvent[] = [];
const logLines: string[] = [];
let explode = false;

beforeAll(async () => {
  h = await startHarness({
    session: 'thread-7',
    logLines,
    onBlocked: (event) => {
      if (explode) throw new Error('subscriber blew up');
      seen.push(event);
    },
  });
});
afterAll(async () => {
  await h?.close();
});

const take = () => seen.splice(0, seen.length);

describe('onBlocked', () => {
  it('tells a blocked plain request, with what the audit event says and nothing of its query', async () => {
    take();
    const mark = await h.mark();
    const raw = await h.raw('GET http://blocked.test/p/a?token=SECRET-Q HTTP/1.1\r\nHost: blocked.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(raw)).toBe(403);
    const [event, ...more] = take();
    expect(more).toEqual([]);
    expect(event).toEqual({
      session: 'thread-7',
      ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      method: 'GET',
      scheme: 'http',
      host: 'blocked.test',
      port: 80,
      path: '/p/a',
      reason: 'host blocked.test is not allowed by any bundle',
    });
    expect(JSON.stringify(event)).not.toContain('SECRET-Q');
    const [audited] = await h.egressSince(mark, 1);
    expect(audited).toMatchObject({ outcome: 'blocked', session: event!.session, host: event!.host, port: event!.port, path: event!.path, reason: event!.reason });
  });

  it('tells a blocked CONNECT, a credential host asked in clear (with its rule) and a rejected malformed request', async () => {
    take();
    expect(statusOf(await h.raw('CONNECT blocked.test:8443 HTTP/1.1\r\nHost: blocked.test:8443\r\n\r\n'))).toBe(403);
    expect(statusOf(await h.raw('GET http://api.echo.test/repos/acme/x?sig=SECRET-S HTTP/1.1\r\nHost: api.echo.test\r\nConnection: close\r\n\r\n'))).toBe(403);
    expect(statusOf(await h.raw('GET http://echo.test/x HTTP/1.1\r\nHost: echo.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n'))).toBe(400);
    const events = take();
    expect(events).toMatchObject([
      { session: 'thread-7', method: 'CONNECT', scheme: 'https', host: 'blocked.test', port: 8443, path: '', reason: 'host blocked.test is not allowed by any bundle' },
      { session: 'thread-7', method: 'GET', scheme: 'http', host: 'api.echo.test', port: 80, path: '/repos/acme/x', rule: 'api.echo.test' },
      { session: 'thread-7', method: 'GET', scheme: 'http', path: 'http://echo.test/x', reason: 'more than one Host header' },
    ]);
    expect(events[0]).not.toHaveProperty('rule');
    expect(JSON.stringify(events)).not.toContain('SECRET-S');
  });

  it('says nothing of allowed requests', async () => {
    take();
    expect((await h.curl('https://echo.test/fine?x=1')).status).toBe(200);
    expect(statusOf(await h.raw('GET http://echo.test/fine HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n'))).toBe(200);
    expect(take()).toEqual([]);
  });

  it('caps what a request can make it carry', async () => {
    take();
    const longPath = `/${'a'.repeat(3000)}`;
    // Longer than any valid name: refused as invalid, and quoted cut short.
    const longHost = ['b', 'c', 'd', 'e', 'f'].map((c) => c.repeat(60)).join('.');
    expect(statusOf(await h.raw(`GET http://blocked.test${longPath} HTTP/1.1\r\nHost: blocked.test\r\nConnection: close\r\n\r\n`))).toBe(403);
    expect(statusOf(await h.raw(`GET http://${longHost}/ HTTP/1.1\r\nHost: ${longHost}\r\nConnection: close\r\n\r\n`))).toBe(421);
    const [pathEvent, hostEvent] = take();
    expect(pathEvent!.path).toBe(`${longPath.slice(0, 512)}…`);
    expect(hostEvent!.host).toBe(`${longHost.slice(0, 255)}…`);
    expect(hostEvent!.reason).toMatch(/does not match/);
    expect(hostEvent!.reason.length).toBeLessThanOrEqual(513);
  });

  it('a listener without a session tells nothing', async () => {
    take();
    const anonymous = await h.proxy.listen({ host: '127.0.0.1', port: 0 }, { policy: policyOf(DEFAULT_BUNDLES) });
    try {
      const raw = await rawExchange({ port: anonymous.port! }, 'GET http://blocked.test/ HTTP/1.1\r\nHost: blocked.test\r\nConnection: close\r\n\r\n');
      expect(statusOf(raw)).toBe(403);
      expect(take()).toEqual([]);
    } finally {
      await anonymous.close();
    }
  });

  it('an onBlocked that throws is logged and the request is still answered', async () => {
    explode = true;
    try {
      const raw = await h.raw('GET http://blocked.test/boom HTTP/1.1\r\nHost: blocked.test\r\nConnection: close\r\n\r\n');
      expect(statusOf(raw)).toBe(403);
      expect(raw.toLowerCase()).toContain('x-tagbox-decision: blocked');
      expect(logLines.some((l) => l.includes('blocked-request feed failed') && l.includes('subscriber blew up'))).toBe(true);
    } finally {
      explode = false;
    }
    await h.expectServing();
  });
});
