import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { describeError, isTagboxError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseBundleFile } from '../policy/bundle-file.js';
import type { GrantAnswer, GrantRequest } from '../server/exec-protocol.js';
import { isRootOrSelf, peerCredentials, type PeerCredentials } from '../system/peercred.js';
import type { ExecGrants } from './exec-grants.js';
import { chooseBundles } from './policy-source.js';

/** A bundle file is at most this big (and its line in JSON a little more). */
const MAX_REQUEST = 2 * 1024 * 1024;

/**
 * The proxy's grant socket (`run/exec-grant.sock`, the proxy's, mode 0600): a
 * `tagbox exec` client hands the proxy its bundle file here, directly, and gets
 * a grant's name back to give the server (exec-grants.ts). One JSON line each
 * way, then the connection ends. Only root and the proxy's own user may ask
 * (SO_PEERCRED) — those who could run the command alone, with the vault.
 */
export async function serveExecGrants(socketPath: string, grants: ExecGrants, logger: Logger): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer((socket) => serveOne(socket, grants, logger));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return server;
}

function serveOne(socket: Socket, grants: ExecGrants, logger: Logger): void {
  socket.on('error', () => socket.destroy());
  // Read on after answering: a socket nobody reads never sees the client's end, and stays open.
  const answer = (a: GrantAnswer): void => void socket.end(`${JSON.stringify(a)}\n`).resume();
  let peer: PeerCredentials;
  try {
    peer = peerCredentials(socket);
  } catch (error) {
    logger.warn({ err: describeError(error) }, 'exec grant socket: cannot read the peer; refused');
    return void socket.destroy();
  }
  if (!isRootOrSelf(peer)) {
    logger.warn({ uid: peer.uid }, 'exec grant socket: refused a peer that is neither root nor the proxy user');
    return answer({ ok: false, error: 'refused: only root and the user Tagbox runs as may grant bundles', exitCode: 1 });
  }
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    if (buffer.length > MAX_REQUEST) return answer({ ok: false, error: `the request is over ${MAX_REQUEST} bytes`, exitCode: 2 });
    const end = buffer.indexOf('\n');
    if (end < 0) return;
    socket.removeAllListeners('data');
    socket.on('data', () => undefined);
    try {
      answer(grant(JSON.parse(buffer.slice(0, end)) as GrantRequest, grants));
    } catch (error) {
      answer({ ok: false, error: describeError(error), exitCode: isTagboxError(error) ? error.exitCode : 2 });
    }
  });
}

function grant(request: GrantRequest, grants: ExecGrants): GrantAnswer {
  if (typeof request?.file !== 'string' || typeof request.text !== 'string' || !Array.isArray(request.bundle) || !request.bundle.every((n) => typeof n === 'string')) {
    return { ok: false, error: 'a grant request is {file, text, bundle: [names]}', exitCode: 2 };
  }
  // As the one-shot exec reads it: errors name the file (and line), exit 2.
  const bundles = chooseBundles(parseBundleFile(request.text, request.file).bundles, request.bundle, request.file);
  return { ok: true, grant: grants.issue(bundles), bundles: bundles.map((b) => b.name) };
}
