/**
 * A Server-Sent Events parser, as the HTML standard's EventSource parses a
 * stream: lines end in CRLF, LF or CR (a CR at the end of a chunk waits for a
 * possible LF); `data` lines join with newlines; `:` lines are comments; `id`
 * sets the last event id (kept across events, ignored when it holds a NUL);
 * `retry` sets the reconnection delay; a blank line dispatches. Pure: text in,
 * events out; an event cut off by the end of the stream is never dispatched.
 */
export interface SseEvent {
  /** The `event` field, `message` when absent. */
  type: string;
  data: string;
  /** The last event id at dispatch (an event without `id:` keeps the one before). */
  id: string;
}

export class SseParser {
  private pending = '';
  private started = false;
  private data: string[] = [];
  private type = '';
  private lastId = '';
  /** The server's `retry:` in milliseconds, if it sent one. */
  retryMs: number | undefined;

  /** The events completed by this chunk of the stream. */
  push(chunk: string): SseEvent[] {
    let text = this.pending + chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== '\n' && c !== '\r') continue;
      // A CR as the chunk's last character may be the first half of CRLF: wait for the next chunk.
      if (c === '\r' && i === text.length - 1) break;
      const event = this.line(text.slice(start, i));
      if (event) events.push(event);
      if (c === '\r' && text[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.pending = text.slice(start);
    return events;
  }

  /** The last event id seen, for Last-Event-ID on a reconnect. */
  get lastEventId(): string {
    return this.lastId;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastId = value;
    } else if (field === 'retry') {
      if (/^\d+$/.test(value)) this.retryMs = Number(value);
    }
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const data = this.data;
    const type = this.type;
    this.data = [];
    this.type = '';
    if (data.length === 0) return undefined;
    return { type: type || 'message', data: data.join('\n'), id: this.lastId };
  }
}
