/**
 * The answer to a push, both ways (gitprotocol-pack "report-status"):
 * the one the proxy writes when it refuses a push, so that git prints each
 * ref's reason (` ! [remote rejected] main -> main (reason)`), and reading the
 * upstream's, so that the audit and the thread tell what really landed.
 * Inside side-band-64k the report travels on band 1 and messages on band 2
 * (git prints those as "remote: …"). Pure.
 */
import { FLUSH_PKT, pkt, readPacket, sideband } from './git-pkt-line.js';

export interface RefStatus {
  ref: string;
  ok: boolean;
  reason?: string;
}

export const RECEIVE_PACK_RESULT_TYPE = 'application/x-git-receive-pack-result';

/** Whether git asked for side-band (then the report travels on band 1, messages on band 2). */
export function usesSideband(capabilities: readonly string[]): boolean {
  return capabilities.includes('side-band-64k') || capabilities.includes('side-band');
}

/** A report refusing every ref with its reason, and a message for the person pushing. */
export function refusalReport(refs: ReadonlyArray<{ ref: string; reason?: string }>, capabilities: readonly string[], message: string): Buffer {
  const report = Buffer.concat([pkt('unpack ok\n'), ...refs.map((r) => pkt(`ng ${r.ref} ${oneLine(r.reason ?? 'refused by Tagbox')}\n`)), FLUSH_PKT]);
  return framed(report, capabilities, message);
}

/**
 * A refusal of a request whose commands could not be read: there are no refs
 * to name, so the unpack status says why (git: "remote unpack failed: …"),
 * inside side-band when git asked for it (else git reads it as a bad band).
 */
export function unreadablePushReport(reason: string, capabilities: readonly string[] = []): Buffer {
  return framed(Buffer.concat([pkt(`unpack ${oneLine(reason)}\n`), FLUSH_PKT]), capabilities, reason);
}

/** The report as git asked for it: plain, or on band 1 after the message on band 2. */
function framed(report: Buffer, capabilities: readonly string[], message: string): Buffer {
  if (!usesSideband(capabilities)) return report;
  return Buffer.concat([sideband(2, Buffer.from(`${oneLine(message)}\n`, 'utf8')), sideband(1, report), FLUSH_PKT]);
}

/**
 * The refs an upstream report says were updated or refused; undefined when
 * the body is not a report (then nothing is claimed to have landed).
 */
export function parseReport(body: Buffer, sidebandUsed: boolean): RefStatus[] | undefined {
  const inner = sidebandUsed ? demux(body) : body;
  if (!inner) return undefined;
  const out: RefStatus[] = [];
  let offset = 0;
  let sawUnpack = false;
  for (;;) {
    const p = readPacket(inner, offset);
    if (p.kind !== 'data') return p.kind === 'flush' && sawUnpack ? out : undefined;
    offset = p.next;
    const line = p.payload.toString('latin1').replace(/\n$/, '');
    if (line.startsWith('unpack ')) sawUnpack = true;
    else if (line.startsWith('ok ')) out.push({ ref: line.slice(3), ok: true });
    else if (line.startsWith('ng ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      out.push(space < 0 ? { ref: rest, ok: false } : { ref: rest.slice(0, space), ok: false, reason: rest.slice(space + 1) });
    }
    // report-status-v2 "option" lines qualify the ref before them; what landed is already known.
  }
}

/** Band 1 of a side-band stream, joined; undefined when it is not one. */
function demux(body: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const p = readPacket(body, offset);
    if (p.kind === 'flush') return Buffer.concat(parts);
    if (p.kind !== 'data' || p.payload.length === 0) return undefined;
    offset = p.next;
    if (p.payload[0] === 1) parts.push(p.payload.subarray(1));
    else if (p.payload[0] !== 2 && p.payload[0] !== 3) return undefined;
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ').slice(0, 400);
}
