import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RELAY_BINARY } from '../../src/sandbox/native.js';
import {
  childrenOf, connectClient, cpuTicks, echo, ending, freePort, openFds, relaySideQueues, roundTrip, rssKiB, sha256,
  startRelay, startUnixServer, threads, waitFor,
} from './relay-helpers.js';
import type { Ending, Relay, UnixServer } from './relay-helpers.js';

/**
 * native/relay.c, the sandbox's relay to its proxy socket, run on the host:
 * 127.0.0.1:<free port> -> a Unix socket served by a Node server. Each test
 * attacks it as a client in the sandbox could, and checks it still serves.
 */
const MiB = 1024 * 1024;
const BUF_KIB = 64;

let dir: string;
let socketPath: string;
let relay: Relay | undefined;
let servers: UnixServer[];
let clients: Socket[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tagbox-relay-test-'));
  socketPath = join(dir, 'proxy.sock');
  servers = [];
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.destroy();
  await relay?.stop();
  relay = undefined;
  await Promise.all(servers.map((server) => server.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function serve(onConnection: (socket: Socket) => void, options: { allowHalfOpen?: boolean } = {}): Promise<UnixServer> {
  const server = await startUnixServer(socketPath, onConnection, options);
  servers.push(server);
  return server;
}

async function client(options: { allowHalfOpen?: boolean } = {}): Promise<Socket> {
  if (!relay) throw new Error('no relay');
  const socket = await connectClient(relay, options);
  socket.on('error', () => undefined);
  clients.push(socket);
  return socket;
}

/** The relay's descriptors with no connection (stdio, listener, epoll, reserve); each connection adds two. */
const idleFds = (r: Relay): number => openFds(r.pid);

/** Writes all of `data` with back-pressure; resolves with how often the writer had to wait for 'drain'. */
async function writeAll(socket: Socket, data: Buffer, end: boolean): Promise<number> {
  let waits = 0;
  for (let offset = 0; offset < data.length; offset += 64 * 1024) {
    if (!socket.write(data.subarray(offset, offset + 64 * 1024))) {
      waits++;
      await new Promise((resolve) => socket.once('drain', resolve));
    }
  }
  if (end) socket.end();
  return waits;
}

/** Reads slowly (a pause after every chunk) until `length` bytes or EOF. */
function readSlowly(socket: Socket, length = Infinity): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const finish = () => resolve(Buffer.concat(chunks));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) return finish();
      socket.pause();
      setTimeout(() => socket.resume(), 2);
    });
    socket.once('end', finish);
    socket.once('error', reject);
  });
}

describe('tagbox-relay: data', () => {
  it('relays 16 MiB of random bytes intact to a slow reader, with back-pressure and bounded memory', async () => {
    await serve(echo);
    relay = await startRelay(socketPath);
    const socket = await client();
    const baseline = rssKiB(relay.pid);
    let peak = baseline;
    const pid = relay.pid;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 2);
    const data = randomBytes(16 * MiB);
    const [waits, received] = await Promise.all([writeAll(socket, data, false), readSlowly(socket, data.length)]);
    clearInterval(sampler);
    expect(received.length).toBe(data.length);
    expect(sha256(received)).toBe(sha256(data));
    // The slow reader held the writer back through the relay (and the echo server)...
    expect(waits).toBeGreaterThan(0);
    // ...instead of the relay buffering what was in flight: a few 64 KiB buffers at most.
    expect(peak - baseline).toBeLessThan(8 * BUF_KIB * 2);
  });

  it('relays independent streams both ways at once, each side reading slowly, and ends each with its half-close', async () => {
    const up = randomBytes(8 * MiB);
    const down = randomBytes(8 * MiB);
    let serverGot: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    await serve((socket) => {
      serverGot = readSlowly(socket);
      void writeAll(socket, down, true);
    }, { allowHalfOpen: true });
    relay = await startRelay(socketPath);
    const socket = await client({ allowHalfOpen: true });
    const [, clientGot] = await Promise.all([writeAll(socket, up, true), readSlowly(socket)]);
    expect(sha256(clientGot)).toBe(sha256(down));
    expect(sha256(await serverGot)).toBe(sha256(up));
  });
});

describe('tagbox-relay: half-close', () => {
  it('carries the client\'s EOF to the server and the server\'s reply back', async () => {
    await serve((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      // The reply is written only after the client's EOF arrived: it proves the half-close kept the way back open.
      socket.on('end', () => socket.end(`reply to ${Buffer.concat(chunks).toString()}`));
    }, { allowHalfOpen: true });
    relay = await startRelay(socketPath);
    const idle = idleFds(relay);
    const socket = await client({ allowHalfOpen: true });
    const result = ending(socket);
    socket.end('request');
    expect(await result).toEqual({ received: Buffer.from('reply to request'), ended: true, error: undefined });
    await waitFor(() => openFds(relay!.pid) === idle, 'the relay to close both sides');
  });

  it('carries the server\'s EOF to the client, and the client can still send', async () => {
    const received: string[] = [];
    let serverEnded!: () => void;
    const ended = new Promise<void>((resolve) => (serverEnded = resolve));
    await serve((socket) => {
      socket.on('data', (chunk: Buffer) => received.push(chunk.toString()));
      socket.on('end', serverEnded);
      socket.end('greeting');
    }, { allowHalfOpen: true });
    relay = await startRelay(socketPath);
    const socket = await client({ allowHalfOpen: true });
    const greeting = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.once('end', () => resolve(text));
    });
    expect(greeting).toBe('greeting');
    socket.end('sent after the server ended');
    await ended;
    expect(received.join('')).toBe('sent after the server ended');
  });
});

describe('tagbox-relay: one process', () => {
  it('serves 1000 concurrent connections from one process with one thread and no children', async () => {
    const server = await serve(echo);
    relay = await startRelay(socketPath);
    const idle = idleFds(relay);
    const sockets = await Promise.all(Array.from({ length: 1000 }, () => client()));
    const payloads = sockets.map(() => randomBytes(64));
    const replies = await Promise.all(sockets.map((socket, i) => roundTrip(socket, payloads[i]!)));
    replies.forEach((reply, i) => expect(reply.equals(payloads[i]!)).toBe(true));
    // All 1000 are open at once, end to end.
    expect(server.connections.size).toBeGreaterThanOrEqual(1000);
    expect(openFds(relay.pid)).toBe(idle + 2000);
    expect(threads(relay.pid)).toHaveLength(1);
    expect(childrenOf(relay.pid)).toEqual([]);
    for (const socket of sockets) socket.end();
    await waitFor(() => openFds(relay!.pid) === idle, 'every connection to be closed');
  });
});

describe('tagbox-relay: clients that go away', () => {
  it('a client reset closes its server-side connection at once, and the relay keeps serving', async () => {
    const server = await serve(echo);
    relay = await startRelay(socketPath);
    const idle = idleFds(relay);
    const socket = await client();
    expect((await roundTrip(socket, Buffer.from('hello'))).toString()).toBe('hello');
    const [serverSide] = [...server.connections];
    const closed = new Promise((resolve) => serverSide!.once('close', resolve));
    socket.resetAndDestroy();
    await closed;
    await waitFor(() => openFds(relay!.pid) === idle, 'the relay to close both sides');
    expect((await roundTrip(await client(), Buffer.from('next'))).toString()).toBe('next');
  });

  it('notices a reset from a client it has stopped reading (back-pressure must not hide the hang-up)', async () => {
    // The server never reads: the relay's buffer toward it fills and the relay stops reading the client.
    let serverClosed!: Promise<unknown>;
    const server = await serve((socket) => {
      socket.pause();
      serverClosed = new Promise((resolve) => socket.once('close', resolve));
    });
    relay = await startRelay(socketPath);
    const idle = idleFds(relay);
    const socket = await client();
    socket.write(randomBytes(16 * MiB));
    // Stopped: bytes wait unread on the relay's side and their count no longer moves.
    let last = 0;
    let still = 0;
    await waitFor(() => {
      const rx = relaySideQueues(relay!.port).get(socket.localPort!)?.rx ?? 0;
      still = rx > 0 && rx === last ? still + 1 : 0;
      last = rx;
      return still >= 10;
    }, 'the relay to stop reading the client');
    socket.resetAndDestroy();
    await waitFor(() => openFds(relay!.pid) === idle, 'the relay to close both sides of the stalled connection');
    // The server sees its connection end once it reads again.
    for (const serverSide of server.connections) serverSide.resume();
    await serverClosed;
    await client();
    await waitFor(() => openFds(relay!.pid) === idle + 2, 'the next client to be relayed');
  });

  it('a client that disconnects ends its server-side connection', async () => {
    const server = await serve(echo);
    relay = await startRelay(socketPath);
    const idle = idleFds(relay);
    const socket = await client();
    expect((await roundTrip(socket, Buffer.from('hello'))).toString()).toBe('hello');
    const [serverSide] = [...server.connections];
    const serverEnded = new Promise((resolve) => serverSide!.once('end', resolve));
    socket.destroy();
    await serverEnded;
    await waitFor(() => openFds(relay!.pid) === idle && server.connections.size === 0, 'both sides to be closed');
  });
});

describe('tagbox-relay: the proxy socket away, refusing or full', () => {
  it('closes clients cleanly while nobody listens on the socket, and serves again once the server is back', async () => {
    relay = await startRelay(socketPath);
    for (let i = 0; i < 3; i++) {
      expect(await ending(await client())).toEqual({ received: Buffer.alloc(0), ended: true, error: undefined });
    }
    const server = await serve(echo);
    const socket = await client();
    expect((await roundTrip(socket, Buffer.from('back'))).toString()).toBe('back');
    // The server goes away under a live connection: the client is closed, and later clients too.
    const result = ending(socket);
    await server.close();
    servers = [];
    expect((await result).ended).toBe(true);
    expect((await ending(await client())).ended).toBe(true);
    await serve(echo);
    expect((await roundTrip(await client(), Buffer.from('again'))).toString()).toBe('again');
  });

  it('closes clients at once when the server\'s backlog is full (EAGAIN), and serves again later', async () => {
    // A server that listens with a backlog of 1 and never accepts: its event loop is blocked.
    const closed: Ending[] = [];
    const stuck = spawn(process.execPath, ['-e', `
      const server = require('node:net').createServer();
      server.listen({ path: process.argv[1], backlog: 1 }, () => {
        process.stdout.write('up\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
      });`, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => stuck.stdout.once('data', resolve));
      relay = await startRelay(socketPath);
      await Promise.all(Array.from({ length: 10 }, async () => {
        void ending(await client()).then((result) => closed.push(result));
      }));
      // The backlog (1, which Linux takes as 2) holds two; the other 8 are closed at once, without data or error.
      await waitFor(() => closed.length === 8, 'the clients beyond the backlog to be closed');
      for (const result of closed) expect(result).toEqual({ received: Buffer.alloc(0), ended: true, error: undefined });
    } finally {
      stuck.kill('SIGKILL');
      await new Promise((resolve) => stuck.once('exit', resolve));
    }
    // The two in the backlog are closed when the server dies.
    await waitFor(() => closed.length === 10, 'the queued clients to be closed');
    rmSync(socketPath, { force: true });
    await serve(echo);
    expect((await roundTrip(await client(), Buffer.from('served'))).toString()).toBe('served');
  });
});

describe('tagbox-relay: limits', () => {
  it('closes clients beyond its connection cap at once, without harming the connections it holds', async () => {
    const server = await serve(echo);
    relay = await startRelay(socketPath, { maxConnections: 3 });
    const idle = idleFds(relay);
    const held = await Promise.all([client(), client(), client()]);
    for (const socket of held) expect((await roundTrip(socket, Buffer.from('held'))).toString()).toBe('held');
    // A flood beyond the cap: each is accepted and closed, with nothing relayed.
    const flood = await Promise.all(Array.from({ length: 50 }, async () => ending(await client())));
    for (const result of flood) expect(result).toEqual({ received: Buffer.alloc(0), ended: true, error: undefined });
    expect(server.connections.size).toBe(3);
    for (const socket of held) expect((await roundTrip(socket, Buffer.from('still'))).toString()).toBe('still');
    // A freed slot serves the next client.
    held[0]!.end();
    await waitFor(() => server.connections.size === 2, 'the first connection to close');
    await waitFor(() => openFds(relay!.pid) === idle + 4, 'the relay to release its slot');
    expect((await roundTrip(await client(), Buffer.from('next'))).toString()).toBe('next');
  });

  it('a flood of half-open clients does not stop a well-behaved client, and costs bounded memory', async () => {
    await serve(echo);
    relay = await startRelay(socketPath);
    const baseline = rssKiB(relay.pid);
    // 300 that connect and say nothing; 100 that send 1 MiB, end their side and never read the echo.
    const silent = await Promise.all(Array.from({ length: 300 }, () => client()));
    const stalled = await Promise.all(Array.from({ length: 100 }, async () => {
      const socket = await client({ allowHalfOpen: true });
      socket.pause();
      socket.end(randomBytes(MiB));
      return socket;
    }));
    await waitFor(() => {
      const queues = relaySideQueues(relay!.port);
      return stalled.every((s) => (queues.get(s.localPort!)?.tx ?? 0) > 0);
    }, 'the stalled clients\' echoes to back up');
    const good = await client();
    const payload = randomBytes(256 * 1024);
    expect(sha256(await roundTrip(good, payload))).toBe(sha256(payload));
    expect(threads(relay.pid)).toHaveLength(1);
    // At most two 64 KiB buffers per connection, whatever the clients do.
    expect(rssKiB(relay.pid) - baseline).toBeLessThan(401 * 2 * BUF_KIB + 2048);
    expect(silent.every((s) => !s.destroyed)).toBe(true);
  });

  it('out of descriptors (EMFILE), it closes new clients without spinning and keeps serving the others', async () => {
    await serve(echo);
    // 12 inherited descriptors and a limit of 24: room for 3 connections (the cap it derives is 4).
    const devNull = openSync('/dev/null', 'r');
    try {
      relay = await startRelay(socketPath, { fileLimit: 24, inheritFds: Array.from({ length: 12 }, () => devNull) });
    } finally {
      closeSync(devNull);
    }
    await waitFor(() => /file limit \(24\) allows 4 connections, not 4096/.test(relay!.stderr()), 'the relay to say it lowered its cap');
    const idle = idleFds(relay);
    const held = await Promise.all([client(), client(), client()]);
    for (const socket of held) expect((await roundTrip(socket, Buffer.from('held'))).toString()).toBe('held');
    const before = cpuTicks(relay.pid);
    const turnedAway = await Promise.all(Array.from({ length: 20 }, async () => ending(await client())));
    for (const result of turnedAway) expect(result.received.length).toBe(0);
    // Idle with descriptors exhausted: a relay spinning on EMFILE would burn this whole second.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(cpuTicks(relay.pid) - before).toBeLessThan(50);
    for (const socket of held) expect((await roundTrip(socket, Buffer.from('still'))).toString()).toBe('still');
    held[0]!.destroy();
    await waitFor(() => openFds(relay!.pid) === idle + 4, 'a descriptor pair to be freed');
    expect((await roundTrip(await client(), Buffer.from('next'))).toString()).toBe('next');
  });
});

describe('tagbox-relay: arguments', () => {
  it('refuses bad arguments (exit 2) and an address it cannot listen on (exit 1), naming the problem', async () => {
    const run = (args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(RELAY_BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(await run([])).toMatchObject({ code: 2, stderr: expect.stringMatching(/usage: tagbox-relay/) });
    expect(await run(['127.0.0.1', socketPath])).toMatchObject({ code: 2, stderr: expect.stringMatching(/LISTEN_ADDR:PORT/) });
    expect(await run(['127.0.0.1:99999', socketPath])).toMatchObject({ code: 2, stderr: expect.stringMatching(/port 1-65535/) });
    expect(await run(['127.0.0.1:3128', 'relative.sock'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/absolute path/) });
    expect(await run(['127.0.0.1:3128', `/${'x'.repeat(200)}`])).toMatchObject({ code: 2, stderr: expect.stringMatching(/shorter than 108/) });
    expect(await run(['127.0.0.1:3128', socketPath, '0'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/MAX_CONNECTIONS/) });
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      expect(await run([`127.0.0.1:${port}`, socketPath])).toMatchObject({ code: 1, stderr: expect.stringMatching(/cannot listen on 127\.0\.0\.1:\d+: Address already in use/) });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
