import { readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectLimitMechanism, runInSandbox } from '../../src/sandbox/index.js';
import { fixture, sandboxProcesses, sh } from './helpers.js';
import type { Fixture } from './helpers.js';

const hasCgroups = detectLimitMechanism().kind !== 'rlimits';
const CONNECTIONS = 400;
const PROCESSES = 40;

let f: Fixture;
beforeAll(async () => {
  f = await fixture();
});
afterAll(async () => f?.close());

/**
 * Opens CONNECTIONS connections to the relay at once, sends a proxy request on
 * each and waits for every answer with all of them still open; then reports
 * what it saw, and the relay's processes and threads as the sandbox's /proc shows them.
 */
const script = (marker: string) => `
const net = require('node:net');
const sockets = [];
let answered = 0, closedEarly = 0;
const errors = new Set();
for (let i = 0; i < ${CONNECTIONS}; i++) {
  const socket = net.connect(3128, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.on('connect', () => socket.write('GET http://example.com/c' + i + ' HTTP/1.1\\r\\nHost: example.com\\r\\n\\r\\n'));
  socket.on('data', (chunk) => {
    text += chunk;
    if (!socket.answered && text.includes('${marker} GET http://example.com/c' + i + '\\n')) {
      socket.answered = true;
      if (++answered === ${CONNECTIONS}) report();
    }
  });
  socket.on('close', () => { if (!socket.answered) closedEarly++; });
  socket.on('error', (e) => errors.add(e.code));
}
function report() {
  console.log(JSON.stringify({ answered, closedEarly, open: sockets.filter((s) => !s.destroyed).length, errors: [...errors] }));
  // Held open a moment, so that the host can count the sandbox's relay processes meanwhile.
  setTimeout(() => { for (const socket of sockets) socket.destroy(); clearTimeout(timer); }, 1000);
}
const timer = setTimeout(() => { console.log(JSON.stringify({ answered, closedEarly, errors: [...errors], timedOut: true })); process.exit(1); }, 20000);
`;

describe('the relay inside a sandbox', () => {
  it(`carries ${CONNECTIONS} concurrent connections from one sandbox held to ${PROCESSES} processes (socat needed one each)`, async () => {
    const sandbox = await f.create({ processes: PROCESSES });
    if (hasCgroups) expect(sandbox.info.enforcement.processes).toMatch(/cgroup/);
    let open = 0;
    let peak = 0;
    const onConnection = (socket: Socket) => {
      peak = Math.max(peak, ++open);
      socket.once('close', () => open--);
    };
    f.server.on('connection', onConnection);
    // Commands see only their own processes: the host counts the sandbox's relays and their threads.
    let relays = 0;
    let threads = 0;
    const count = setInterval(() => {
      const found = sandboxProcesses(sandbox).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!.endsWith('/tagbox-relay');
        } catch {
          return false;
        }
      });
      relays = Math.max(relays, found.length);
      for (const pid of found) threads = Math.max(threads, readdirSync(`/proc/${pid}/task`).length);
    }, 100);
    try {
      const result = await runInSandbox(f.provider, sandbox, { argv: ['node', '-e', script(f.marker)], timeoutMs: 25_000 });
      expect(JSON.parse(result.stdout)).toEqual({ answered: CONNECTIONS, closedEarly: 0, open: CONNECTIONS, errors: [] });
      expect({ relays, threads }).toEqual({ relays: 1, threads: 1 });
      // The proxy end saw them all at once too.
      expect(peak).toBeGreaterThanOrEqual(CONNECTIONS);
      expect(result.exitCode).toBe(0);
    } finally {
      clearInterval(count);
      f.server.off('connection', onConnection);
    }
    // The sandbox is still healthy afterwards.
    expect((await sh(f, sandbox, 'curl -sS http://example.com/after')).stdout).toContain(`${f.marker} GET http://example.com/after`);
  });
});
