import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * The credentials of the process at the other end of a Unix socket
 * (SO_PEERCRED), through native/peercred.c: Node has no API for it. The kernel
 * records them when the peer connects; nothing the peer sends can change them.
 */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

const ADDON = fileURLToPath(new URL('../../native/build/peercred.node', import.meta.url));
let addon: { peerCredentials(fd: number): PeerCredentials } | undefined;

export function peerCredentials(socket: Socket): PeerCredentials {
  addon ??= createRequire(import.meta.url)(ADDON) as { peerCredentials(fd: number): PeerCredentials };
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the socket has no descriptor (not a Unix socket connection?)');
  return addon.peerCredentials(fd);
}

/**
 * Who may hand a local Tagbox process work on its own behalf (`tagbox exec` to the
 * server, bundles to the proxy): root, and the process's own user — those who
 * could do the same by hand, holding the home.
 */
export function isRootOrSelf(peer: PeerCredentials): boolean {
  return peer.uid === 0 || peer.uid === process.getuid?.();
}
