/**
 * Server-Sent Events read from raw bytes as they pass, for the usage tap:
 * lines end in CRLF, LF or CR (a CR that ends one chunk and an LF that starts
 * the next are one line end), a leading BOM is dropped, `:` lines are
 * comments, `data` lines join with newlines, a blank line dispatches. Pure.
 *
 * It is on the model connection's path, so each chunk crosses into native
 * code once: it is read as a latin1 string (one character per byte, so
 * string offsets are byte offsets), scanned in JavaScript, and only the data
 * of a wanted event is decoded as UTF-8, from its exact bytes — a character
 * cut between two chunks stays whole, since a line is decoded only once it
 * is complete (no UTF-8 sequence contains CR or LF). Event names are compared
 * with the ones the caller wants (`keep`; undefined: all); the data of any
 * other event (text deltas, say) is passed over, never copied or decoded.
 *
 * Memory stays bounded whatever the stream does: a line longer than
 * `maxLineBytes` is skipped to its end, and an event whose data passes
 * `maxEventBytes` is dropped (both counted in `overflowed`).
 */
export interface SseMessage {
  /** The `event` field; '' when the event had none. */
  event: string;
  data: string;
}

export interface SseLimits {
  maxLineBytes: number;
  maxEventBytes: number;
}

export const DEFAULT_SSE_LIMITS: SseLimits = { maxLineBytes: 1024 * 1024, maxEventBytes: 1024 * 1024 };

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const BOM = '\u00ef\u00bb\u00bf';

export class SseLineReader {
  /** Events dropped for their size, or whose data was passed over and then wanted. */
  overflowed = 0;
  private readonly limits: SseLimits;
  /** The bytes of a line that goes on in the next chunk (copied: the chunk is the client's). */
  private carry: Buffer | undefined;
  /** The current line is over the cap: it is dropped up to its end. */
  private skippingLong = false;
  /** The last line ended in CR: an LF right after it is part of that line end. */
  private afterCr = false;
  private firstLine = true;
  private event = '';
  /** Whether the current event's data is kept (by its name so far). */
  private keeping = true;
  private skippedData = false;
  private data: string[] = [];
  private dataBytes = 0;
  private dataOverflow = false;

  constructor(
    private readonly onMessage: (message: SseMessage) => void,
    limits?: Partial<SseLimits>,
    private readonly keep?: readonly string[],
  ) {
    this.limits = limits ? { ...DEFAULT_SSE_LIMITS, ...limits } : DEFAULT_SSE_LIMITS;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carry) {
      buf = Buffer.concat([this.carry, buf]);
      this.carry = undefined;
    }
    const text = buf.toString('latin1');
    let start = 0;
    if (this.afterCr) {
      this.afterCr = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    const hasCr = text.indexOf('\r', start) !== -1;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (hasCr) {
        const cr = text.indexOf('\r', start);
        if (cr !== -1 && (end === -1 || cr < end)) end = cr;
      }
      if (end === -1) break;
      if (this.skippingLong) {
        // The rest of an over-long line: it ends here, unread.
        this.skippingLong = false;
        this.dataOverflow = true;
      } else {
        this.line(buf, text, start, end);
        // An event not kept (a text delta): straight to its blank line, unless another `event` line could rename it.
        if (!this.keeping && !hasCr) {
          const blank = text.indexOf('\n\n', end);
          if (blank !== -1) {
            const renamed = text.indexOf('\nevent', end);
            if (renamed === -1 || renamed >= blank) {
              if (blank > end) this.skippedData = true;
              start = blank + 1;
              continue;
            }
          }
        }
      }
      if (text.charCodeAt(end) === CR) {
        if (end + 1 < text.length) {
          if (text.charCodeAt(end + 1) === LF) end++;
        } else this.afterCr = true;
      }
      start = end + 1;
    }
    if (start >= text.length || this.skippingLong) return;
    if (text.length - start > this.limits.maxLineBytes) {
      this.skippingLong = true;
      return;
    }
    this.carry = Buffer.from(buf.subarray(start));
  }

  /** The stream ended: a last line without its end counts, and so does an event without its blank line (what was seen is what is recorded). */
  end(): void {
    if (this.skippingLong) this.dataOverflow = true;
    else if (this.carry) {
      const buf = this.carry;
      this.carry = undefined;
      this.line(buf, buf.toString('latin1'), 0, buf.length);
    }
    this.skippingLong = false;
    this.dispatch();
  }

  private line(buf: Buffer, text: string, from: number, to: number): void {
    if (this.firstLine) {
      this.firstLine = false;
      if (text.startsWith(BOM, from)) from += 3;
    }
    if (to <= from) return this.dispatch();
    const first = text.charCodeAt(from);
    if (first === COLON) return;
    if (text.startsWith('data', from) && (to - from === 4 || text.charCodeAt(from + 4) === COLON)) {
      if (!this.keeping) {
        this.skippedData = true;
        return;
      }
      const at = valueStart(text, from + 4, to);
      this.dataBytes += to - at + 1;
      if (this.dataBytes > this.limits.maxEventBytes) this.dataOverflow = true;
      else this.data.push(at >= to ? '' : buf.toString('utf8', at, to));
    } else if (text.startsWith('event', from) && (to - from === 5 || text.charCodeAt(from + 5) === COLON)) {
      const at = valueStart(text, from + 5, to);
      if (!this.keep) {
        this.event = at >= to ? '' : buf.toString('utf8', at, to);
        return;
      }
      // A wanted name is recognised in place; any other is not kept (nor decoded).
      this.event = '';
      this.keeping = false;
      for (const name of this.keep) {
        if (name.length === to - at && text.startsWith(name, at)) {
          this.event = name;
          this.keeping = true;
          break;
        }
      }
    }
    // Other fields (id, retry, unknown ones) say nothing about usage.
  }

  private dispatch(): void {
    const { event, data, dataOverflow, skippedData, keeping } = this;
    this.event = '';
    this.keeping = true;
    this.skippedData = false;
    if (data.length > 0) this.data = [];
    this.dataBytes = 0;
    this.dataOverflow = false;
    if (!keeping) return;
    // Data passed over under one event name, then wanted under another (two `event` lines): not readable whole.
    if (dataOverflow || skippedData) {
      this.overflowed += 1;
      return;
    }
    if (data.length === 0) return;
    this.onMessage({ event, data: data.join('\n') });
  }
}

/** Where a field's value begins: after its colon and one optional space (the end, for a field without a colon). */
function valueStart(text: string, colon: number, to: number): number {
  if (colon >= to) return to;
  return text.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1;
}
