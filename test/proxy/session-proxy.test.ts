import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request } from 'node:http';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProxyRuntime } from '../../src/proxy/runtime.js';
import { SessionProxy } from '../../src/proxy/session-proxy.js';

/**
 * The proxy socket of `tagbox exec`: bound at once, the proxy behind it started
 * only by start() or by the first connection, and what arrived before handed
 * over intact. A fake runtime stands in for the proxy (it answers with its
 * count of starts); test/e2e/exec-startup.test.ts runs the real one.
 */
describe('SessionProxy', () => {
  let dir: string;
  let socketPath: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tagbox-session-proxy-'));
    socketPath = join(dir, 'proxy.sock');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A runtime that takes `delayMs` to start and answers every request with "started N". */
  function fakeRuntime(delayMs: number) {
    let starts = 0;
    let closes = 0;
    const start = async (acceptor: Server): Promise<ProxyRuntime> => {
      starts += 1;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      const http = createHttpServer((req, res) => res.end(`started ${starts} ${req.url}`));
      acceptor.on('connection', (socket) => http.emit('connection', socket));
      return {
        close: async () => {
          closes += 1;
          http.closeAllConnections();
          await new Promise<void>((resolve) => acceptor.close(() => resolve()));
        },
      } as unknown as ProxyRuntime;
    };
    return { start, starts: () => starts, closes: () => closes };
  }

  const get = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const req = request({ socketPath, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });

  it('binds the socket at once and starts nothing until asked', async () => {
    const runtime = fakeRuntime(0);
    const proxy = await SessionProxy.bind(socketPath, runtime.start, () => undefined);
    expect(existsSync(socketPath)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(proxy.started).toBe(false);
    expect(runtime.starts()).toBe(0);
    await proxy.close();
    expect(runtime.closes()).toBe(0);
    expect(existsSync(socketPath)).toBe(false);
  });

  it('starts the proxy once on the first connections and hands them over with the bytes they sent meanwhile', async () => {
    const runtime = fakeRuntime(150);
    const proxy = await SessionProxy.bind(socketPath, runtime.start, () => undefined);
    const answers = await Promise.all([get('/a'), get('/b'), get('/c')]);
    expect(answers).toEqual(['started 1 /a', 'started 1 /b', 'started 1 /c']);
    expect(await get('/later')).toBe('started 1 /later');
    expect(proxy.started).toBe(true);
    expect(runtime.starts()).toBe(1);
    await proxy.close();
    expect(runtime.closes()).toBe(1);
    expect(existsSync(socketPath)).toBe(false);
  });

  it('start() starts it before any connection, once', async () => {
    const runtime = fakeRuntime(20);
    const proxy = await SessionProxy.bind(socketPath, runtime.start, () => undefined);
    await Promise.all([proxy.start(), proxy.start()]);
    expect(runtime.starts()).toBe(1);
    expect(await get('/x')).toBe('started 1 /x');
    await proxy.close();
  });

  it('fails closed: when the proxy cannot start, every connection is closed unanswered and the error reported', async () => {
    const errors: unknown[] = [];
    const proxy = await SessionProxy.bind(socketPath, async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      throw new Error('no CA key');
    }, (error) => errors.push(error));
    await expect(get('/a')).rejects.toThrow(/socket hang up|ECONNRESET|EPIPE/);
    await expect(get('/b')).rejects.toThrow(/socket hang up|ECONNRESET|EPIPE/);
    expect(errors.map((e) => (e as Error).message)).toEqual(['no CA key']);
    await expect(proxy.start()).rejects.toThrow('no CA key');
    await proxy.close();
    expect(existsSync(socketPath)).toBe(false);
  });
});
