import { createConnection } from 'node:net';
import type { Place } from '../access/effective-policy.js';

/**
 * The Agent Proxy child's control socket: one JSON object per line each way.
 *   {op: 'ping'}                                        -> {ok: true, pid}
 *   {op: 'open-listener', session, socketPath, place?, bundles?} -> {ok: true, address}
 *   {op: 'close-listener', session}                     -> {ok: true}
 * Failures answer {ok: false, error}. With `place` (a channel or a member's DM)
 * the child computes the effective policy from the database itself and keeps
 * it current as admins change access; otherwise `bundles`, in the bundle-file
 * shape (secrets by vault name), are compiled once. No secret ever crosses.
 */
export type ControlRequest =
  | { op: 'ping' }
  | { op: 'open-listener'; session: string; socketPath: string; place?: Place; bundles?: unknown[] }
  | { op: 'close-listener'; session: string };

export type ControlResponse = { ok: true; pid?: number; address?: string } | { ok: false; error: string };

/** Sends one request and waits for its answer (one connection per request: simple, and rare). */
export function controlRequest(socketPath: string, request: ControlRequest, timeoutMs = 2000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from the proxy control socket within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(buffer.slice(0, end)) as ControlResponse);
      } catch (error) {
        reject(error as Error);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
