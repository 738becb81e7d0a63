/**
 * Server-Sent Events read from raw bytes as they pass, for the usage tap:
 * lines end in CRLF, LF or CR (a CR that ends one chunk and an LF that starts
 * the next are one line end), a leading BOM is dropped, `:` lines are
 * comments, `data` lines join with newlines, a blank line dispatches. Bytes
 * are split into lines before they are decoded, so a character cut between
 * two chunks stays whole (no UTF-8 sequence contains CR or LF). Pure.
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

const LF = 0x0a;
const CR = 0x0d;

export class SseLineReader {
  /** Lines or events dropped for their size. */
  overflowed = 0;
  private readonly limits: SseLimits;
  /** The current line's bytes so far (across chunks). */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The current line is over the cap: its bytes are dropped until its end. */
  private skipping = false;
  /** The last line ended in CR: an LF right after it is part of that line end. */
  private afterCr = false;
  private firstLine = true;
  private event = '';
  private data: string[] = [];
  private dataBytes = 0;
  private dataOverflow = false;

  constructor(
    private readonly onMessage: (message: SseMessage) => void,
    limits: Partial<SseLimits> = {},
  ) {
    this.limits = { ...DEFAULT_SSE_LIMITS, ...limits };
  }

  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    let i = 0;
    if (this.afterCr && buf.length > 0) {
      this.afterCr = false;
      if (buf[0] === LF) start = i = 1;
    }
    for (; i < buf.length; i++) {
      const b = buf[i];
      if (b !== LF && b !== CR) continue;
      this.take(buf, start, i);
      this.endLine();
      if (b === CR) {
        if (i + 1 < buf.length) {
          if (buf[i + 1] === LF) i++;
        } else this.afterCr = true;
      }
      start = i + 1;
    }
    if (start < buf.length) this.take(buf, start, buf.length);
  }

  /** The stream ended: a last line without its end counts, and so does an event without its blank line (what was seen is what is recorded). */
  end(): void {
    if (this.partialBytes > 0 || this.skipping) this.endLine();
    this.dispatch();
  }

  private take(buf: Buffer, from: number, to: number): void {
    if (to <= from || this.skipping) return;
    if (this.partialBytes + (to - from) > this.limits.maxLineBytes) {
      this.skipping = true;
      this.partial = [];
      this.partialBytes = 0;
      return;
    }
    // Copied: the caller's chunk is the response body, passed on to the client.
    this.partial.push(Buffer.from(buf.subarray(from, to)));
    this.partialBytes += to - from;
  }

  private endLine(): void {
    if (this.skipping) {
      this.skipping = false;
      // An over-long line was a field of this event: the event cannot be read whole (counted at dispatch).
      this.dataOverflow = true;
      return;
    }
    let line = this.partial.length === 1 ? this.partial[0]!.toString('utf8') : Buffer.concat(this.partial, this.partialBytes).toString('utf8');
    this.partial = [];
    this.partialBytes = 0;
    if (this.firstLine) {
      this.firstLine = false;
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    }
    this.line(line);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.charCodeAt(0) === 0x3a /* : */) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') {
      this.dataBytes += value.length + 1;
      if (this.dataBytes > this.limits.maxEventBytes) this.dataOverflow = true;
      else this.data.push(value);
    }
  }

  private dispatch(): void {
    const { event, data, dataOverflow } = this;
    this.event = '';
    this.data = [];
    this.dataBytes = 0;
    this.dataOverflow = false;
    if (dataOverflow) {
      this.overflowed += 1;
      return;
    }
    if (data.length === 0) return;
    this.onMessage({ event, data: data.join('\n') });
  }
}
