import type { Command } from 'commander';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { effectivePolicy } from '../access/effective-policy.js';
import { watchPolicy, type PolicyWatch } from '../access/policy-watch.js';
import { describeError } from '../errors.js';
import { compilePolicy } from '../policy/compile.js';
import { validateBundles } from '../policy/bundle-file.js';
import type { ProxyListener } from '../proxy/agent-proxy.js';
import { startProxyRuntime, type ProxyRuntime } from '../proxy/runtime.js';
import type { ControlRequest, ControlResponse } from '../server/control-protocol.js';
import { contextFrom } from './context.js';

interface OpenListener {
  listener: ProxyListener;
  watch?: PolicyWatch;
}

/**
 * `tagbox proxy-daemon --control SOCKET` (hidden): the Agent Proxy as the
 * child process `tagbox up` supervises. It is the only process that unlocks
 * the vault. It serves a control socket (see server/control-protocol.ts),
 * prints `ready` once serving, and exits when told to or when its parent goes
 * (its stdin closes), so it never outlives the server.
 */
export function registerProxyDaemon(program: Command): void {
  program
    .command('proxy-daemon', { hidden: true })
    .description('internal: the Agent Proxy child of `tagbox up`')
    .requiredOption('--control <socket>', 'control socket path')
    .action(async (opts: { control: string }, command: Command) => {
      const ctx = contextFrom(command);
      const runtime = await startProxyRuntime(ctx);
      const listeners = new Map<string, OpenListener>();
      mkdirSync(dirname(opts.control), { recursive: true, mode: 0o700 });
      rmSync(opts.control, { force: true });
      const server = createServer((socket) => serve(socket, runtime, listeners));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.control, () => resolve());
      });
      process.stdout.write('ready\n');

      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        process.stdin.on('end', resolve).on('close', resolve).resume();
      });
      server.close();
      rmSync(opts.control, { force: true });
      await Promise.allSettled([...listeners.values()].map(async (l) => {
        await l.watch?.close();
        await l.listener.close();
      }));
      await runtime.close();
      process.exit(0);
    });
}

function serve(socket: Socket, runtime: ProxyRuntime, listeners: Map<string, OpenListener>): void {
  let buffer = '';
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      handle(line, runtime, listeners).then(
        (answer) => socket.write(`${JSON.stringify(answer)}\n`),
        (error: unknown) => socket.write(`${JSON.stringify({ ok: false, error: describeError(error) } satisfies ControlResponse)}\n`),
      );
    }
  });
}

async function handle(line: string, runtime: ProxyRuntime, listeners: Map<string, OpenListener>): Promise<ControlResponse> {
  const request = JSON.parse(line) as ControlRequest;
  switch (request.op) {
    case 'ping':
      return { ok: true, pid: process.pid };
    case 'open-listener': {
      if (listeners.has(request.session)) return { ok: false, error: `session ${request.session} already has a listener` };
      if (request.place) {
        // The effective policy of the place, recompiled whenever access changes (within 2 s).
        const policy = await effectivePolicy(runtime.store.db, request.place);
        const listener = await runtime.proxy.listen({ socketPath: request.socketPath }, { session: request.session, policy });
        const watch = await watchPolicy(runtime.store, request.place, (next) => listener.setPolicy(next));
        listeners.set(request.session, { listener, watch });
        return { ok: true, address: listener.address };
      }
      // Default deny: no bundles, nothing reachable.
      const policy = compilePolicy(validateBundles(request.bundles ?? [], `open-listener ${request.session}`));
      const listener = await runtime.proxy.listen({ socketPath: request.socketPath }, { session: request.session, policy });
      listeners.set(request.session, { listener });
      return { ok: true, address: listener.address };
    }
    case 'close-listener': {
      const open = listeners.get(request.session);
      if (!open) return { ok: false, error: `no listener for session ${request.session}` };
      listeners.delete(request.session);
      await open.watch?.close();
      await open.listener.close();
      return { ok: true };
    }
    default:
      return { ok: false, error: `unknown op ${(request as { op?: unknown }).op as string}` };
  }
}
