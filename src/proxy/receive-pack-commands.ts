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

/**
 * The head of a push as it arrives, parsed again only once it has doubled
 * (or it ended, or passed `max`): a body trickled in tiny reads costs linear
 * time, not quadratic. `parses` counts the work, for its test.
 */
export class CommandsReader {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private parseAt = 4;
  parses = 0;

  constructor(private readonly max: number) {}

  get bytes(): number {
    return this.size;
  }

  /** What was read so far, as one buffer. */
  head(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Adds a chunk (none: the body ended) and parses when it is time; `incomplete` until then. */
  push(chunk: Buffer | undefined): CommandsParse {
    if (chunk) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size < this.parseAt && this.size <= this.max) return { kind: 'incomplete' };
    }
    this.parseAt = this.size * 2;
    this.parses += 1;
    return parseReceivePackCommands(this.head());
  }
}
