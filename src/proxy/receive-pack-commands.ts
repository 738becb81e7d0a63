/**
 * The ref-update commands at the head of a `git-receive-pack` request body
 * (gitprotocol-pack "Reference Update Request"): optional `shallow <oid>`
 * lines, then `<old-oid> <new-oid> <ref>` lines, the first carrying the
 * client's capabilities after a NUL, then a flush. The packfile follows; it
 * is never read here. Pure: it says "incomplete" until the flush has arrived.
 */
import { readPacket } from './git-pkt-line.js';

export interface RefCommand {
  oldOid: string;
  newOid: string;
  ref: string;
}

export type CommandsParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'commands'; commands: RefCommand[]; capabilities: string[]; length: number };

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const MAX_COMMANDS = 1000;

export function parseReceivePackCommands(buf: Buffer): CommandsParse {
  const commands: RefCommand[] = [];
  let capabilities: string[] | undefined;
  let offset = 0;
  for (;;) {
    const p = readPacket(buf, offset);
    if (p.kind === 'incomplete' || p.kind === 'invalid') return p;
    offset = p.next;
    if (p.kind === 'flush') {
      // A flush before any command: nothing to update (git sends this when everything is up to date).
      return { kind: 'commands', commands, capabilities: capabilities ?? [], length: offset };
    }
    if (p.kind !== 'data') return { kind: 'invalid', reason: 'unexpected delimiter in the ref-update commands' };
    let line = p.payload.toString('latin1');
    if (line.endsWith('\n')) line = line.slice(0, -1);
    if (capabilities === undefined && line.startsWith('shallow ')) {
      if (!OID.test(line.slice(8))) return { kind: 'invalid', reason: 'a shallow line without an object id' };
      continue;
    }
    if (capabilities === undefined) {
      const nul = line.indexOf('\0');
      // A signed push's certificate: its refs sit inside the certificate, so it is not read here: refused.
      if (line.startsWith('push-cert')) return { kind: 'invalid', reason: 'signed pushes (push certificates) are not supported through Tagbox' };
      capabilities = nul >= 0 ? line.slice(nul + 1).split(' ').filter((c) => c !== '') : [];
      if (nul >= 0) line = line.slice(0, nul);
    }
    const parts = line.split(' ');
    if (parts.length !== 3 || !OID.test(parts[0]!) || !OID.test(parts[1]!) || parts[0]!.length !== parts[1]!.length) {
      return { kind: 'invalid', reason: 'a ref-update command is not "<old-oid> <new-oid> <ref>"' };
    }
    const ref = parts[2]!;
    // The ref is shown to people and written to the audit: printable ASCII only.
    if (!/^refs\/[\x21-\x7e]{1,250}$/.test(ref)) return { kind: 'invalid', reason: 'a ref-update command names a ref that is not refs/… in printable ASCII' };
    commands.push({ oldOid: parts[0]!, newOid: parts[1]!, ref });
    if (commands.length > MAX_COMMANDS) return { kind: 'invalid', reason: `more than ${MAX_COMMANDS} refs in one push` };
  }
}

/**
 * The capabilities on the first command line, once it has arrived (else []),
 * whatever follows: so that even a push that cannot be read is answered in
 * the framing git asked for (side-band-64k), and git shows why.
 */
export function pushCapabilities(buf: Buffer): string[] {
  let offset = 0;
  for (;;) {
    const p = readPacket(buf, offset);
    if (p.kind !== 'data') return [];
    offset = p.next;
    const line = p.payload.toString('latin1');
    if (line.startsWith('shallow ')) continue;
    const nul = line.indexOf('\0');
    return nul < 0 ? [] : line.slice(nul + 1).replace(/\n$/, '').split(' ').filter((c) => c !== '');
  }
}
