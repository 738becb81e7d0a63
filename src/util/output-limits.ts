/**
 * Invariant 9: what a sandbox or engine emits is data. Before anything reaches
 * the thread it is neutralised (no terminal control sequences, no control
 * characters but newline and tab, no mass mentions), capped in size, and its
 * progress rate-limited per session. Pure: no I/O, a clock passed in.
 */

// eslint-disable-next-line no-control-regex -- matching control sequences is the point
const ANSI = /\u001b(\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(\u0007|\u001b\\)?|[ -/]*[0-~])/g;
// C0 controls except \t and \n, DEL, C1 controls; bidi overrides that reorder what a reader sees.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const MASS_MENTION = /@(channel|here|everyone)\b/gi;
const SLACK_SPECIAL = /<!(channel|here|everyone|subteam)[^>]*>/gi;

/** Text safe to show on any surface as plain text. */
export function neutralise(text: string): string {
  return text
    .replace(ANSI, '')
    .replace(/\r\n?/g, '\n')
    .replace(CONTROL, '')
    .replace(SLACK_SPECIAL, (m) => m.replace('<!', '<\u200b!'))
    .replace(MASS_MENTION, (_m, word: string) => `@\u200b${word}`);
}

/**
 * At most `maxBytes` of UTF-8 from the end of `text`, cut on a line boundary
 * when one is near. `cut` is the note to show when something was left out.
 */
export function capTail(text: string, maxBytes: number, totalBytes = Buffer.byteLength(text)): { text: string; cut?: string } {
  const bytes = Buffer.from(text, 'utf8');
  if (totalBytes <= maxBytes && bytes.length <= maxBytes) return { text };
  let start = Math.max(0, bytes.length - maxBytes);
  while (start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start++;
  let kept = bytes.subarray(start).toString('utf8');
  const newline = kept.indexOf('\n');
  if (newline >= 0 && newline < 200) kept = kept.slice(newline + 1);
  return { text: kept, cut: `(output cut: the last ${size(Buffer.byteLength(kept))} of ${size(totalBytes)} shown)` };
}

/** At most `maxBytes` of UTF-8 from the start of `text`, with a note when cut. */
export function capHead(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  const note = `\n(message cut: ${size(bytes.length)} is over the ${size(maxBytes)} limit)`;
  let end = Math.max(0, maxBytes - Buffer.byteLength(note));
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8') + note;
}

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1).replace(/\.0$/, '')} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1).replace(/\.0$/, '')} MiB`;
}

/**
 * Progress of one session: chunks are coalesced and let through at most
 * `bytesPerSecond` (a token bucket of one second's worth); what does not fit
 * is counted and said once, when there is room again ("312 KiB of output not
 * shown"). `push` returns what to post now; `flush` what is left at the end.
 */
export class ProgressLimiter {
  private tokens: number;
  private last: number;
  private dropped = 0;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = bytesPerSecond;
    this.last = now();
  }

  push(text: string): string | undefined {
    this.refill();
    const bytes = Buffer.byteLength(text);
    if (bytes <= this.tokens) {
      this.tokens -= bytes;
      const note = this.takeDropNote();
      return note ? `${note}\n${text}` : text;
    }
    if (this.tokens > 64) {
      // Part of it fits: the head, and the rest counted.
      const head = capHeadBytes(text, this.tokens);
      this.dropped += bytes - Buffer.byteLength(head);
      this.tokens = 0;
      return head;
    }
    this.dropped += bytes;
    return undefined;
  }

  /** The note about what was left out, if anything was. */
  flush(): string | undefined {
    return this.takeDropNote();
  }

  private takeDropNote(): string | undefined {
    if (this.dropped === 0) return undefined;
    const note = `(${size(this.dropped)} of output not shown: over the progress rate limit)`;
    this.dropped = 0;
    return note;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }
}

function capHeadBytes(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  let end = Math.floor(maxBytes);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
