import { SseLineReader, type SseLimits, type SseMessage } from './sse-lines.js';

/**
 * Reads the model's `usage` from a Messages API response while its bytes pass
 * on to the client (DESIGN.md "Model access and usage"). It only looks: it is
 * handed each chunk after the proxy forwarded it, never holds the stream back
 * and never changes a byte. Pure: bytes in, counts out.
 *
 * - JSON (`application/json`): a copy of the body up to `maxJsonBytes`,
 *   parsed at the end for `model` and `usage`. A longer body keeps its head
 *   (for `model`) and its last `tailBytes` (the Messages API puts `usage` last).
 * - SSE (`text/event-stream`): `message_start` gives the model and the first
 *   usage; each `message_delta` carries cumulative counts (the last wins) and
 *   may repeat the input and cache counts. `ping`, content and unknown events
 *   are passed over; an `error` event is noted. A stream cut short records
 *   what was seen.
 *
 * Counts come from the upstream and are data: a value that is not a
 * non-negative number is ignored, fractions are floored, and each count is
 * clamped to MAX_TOKENS, so that a lying response can neither crash the
 * proxy nor overflow a sum.
 */
export interface UsageCounts {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

export interface TapResult extends UsageCounts {
  /** The model the response names, when it named a plausible one. */
  model: string | undefined;
  /** Whether any usage was found (a response without it is not a metered answer: an error, count_tokens). */
  seen: boolean;
  /** The upstream said the request failed (an `error` event or body). */
  error: boolean;
  /** False when part of the body could not be read (over a cap, not valid JSON, cut short). */
  complete: boolean;
}

export interface UsageTap {
  write(chunk: Uint8Array): void;
  /** The usage seen so far, and the tap is done (call once, when the body ended or was cut off). */
  end(): TapResult;
}

export interface TapLimits extends SseLimits {
  maxJsonBytes: number;
  tailBytes: number;
}

/** Far above any real response (the largest context is about a million tokens). */
export const MAX_TOKENS = 10_000_000;

export const DEFAULT_TAP_LIMITS: TapLimits = { maxJsonBytes: 2 * 1024 * 1024, tailBytes: 64 * 1024, maxLineBytes: 1024 * 1024, maxEventBytes: 1024 * 1024 };

/** A tap for this content type, or undefined when it is neither JSON nor SSE (nothing to read). */
export function usageTap(contentType: string | undefined, limits?: Partial<TapLimits>): UsageTap | undefined {
  const all = limits ? { ...DEFAULT_TAP_LIMITS, ...limits } : DEFAULT_TAP_LIMITS;
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === 'text/event-stream') return new SseTap(all);
  if (media === 'application/json' || /^application\/[\w.+-]+\+json$/.test(media)) return new JsonTap(all);
  return undefined;
}

/** What the tap accumulates; each field is set only from a plausible value. */
class Counts {
  model: string | undefined;
  input: number | undefined;
  output: number | undefined;
  cacheRead: number | undefined;
  cacheCreation: number | undefined;
  error = false;

  /** An Anthropic `usage` object: each present, valid field replaces what was seen (the counts are cumulative). */
  usage(value: unknown): void {
    if (!isObject(value)) return;
    this.input = tokenCount(value.input_tokens) ?? this.input;
    this.output = tokenCount(value.output_tokens) ?? this.output;
    this.cacheRead = tokenCount(value.cache_read_input_tokens) ?? this.cacheRead;
    this.cacheCreation = tokenCount(value.cache_creation_input_tokens) ?? this.cacheCreation;
  }

  setModel(value: unknown): void {
    const model = modelName(value);
    if (model !== undefined) this.model = model;
  }

  result(complete: boolean): TapResult {
    const seen = [this.input, this.output, this.cacheRead, this.cacheCreation].some((v) => v !== undefined);
    return {
      model: this.model,
      inputTokens: this.input ?? 0,
      outputTokens: this.output ?? 0,
      cacheReadTokens: this.cacheRead ?? 0,
      cacheCreationTokens: this.cacheCreation ?? 0,
      seen,
      error: this.error,
      complete,
    };
  }
}

/** The events that carry usage or say the request failed (and unnamed ones, read by their data's type); content deltas are passed over unread. */
const USAGE_EVENTS = ['message_start', 'message_delta', 'error', 'message', ''];

class SseTap implements UsageTap {
  private readonly counts = new Counts();
  private readonly reader: SseLineReader;
  private unreadable = 0;
  private done: TapResult | undefined;

  constructor(limits: TapLimits) {
    this.reader = new SseLineReader((m) => this.message(m), limits === DEFAULT_TAP_LIMITS ? undefined : limits, USAGE_EVENTS);
  }

  write(chunk: Uint8Array): void {
    if (!this.done) this.reader.push(chunk);
  }

  end(): TapResult {
    if (this.done) return this.done;
    this.reader.end();
    this.done = this.counts.result(this.reader.overflowed === 0 && this.unreadable === 0);
    return this.done;
  }

  private message({ event, data }: SseMessage): void {
    if (event === 'error') {
      this.counts.error = true;
      return;
    }
    // The API's own shape (one usage object, one model): read just those, not the whole event. Anything else is parsed whole.
    if (event === 'message_start' || event === 'message_delta') {
      const usage = soleObject(data, '"usage"');
      const model = event === 'message_start' ? soleString(data, '"model"') : undefined;
      if (usage !== undefined && (event === 'message_delta' || model !== undefined)) {
        if (model !== undefined) this.counts.setModel(model);
        this.counts.usage(usage);
        return;
      }
    }
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      this.unreadable += 1;
      return;
    }
    if (!isObject(value)) return;
    const type = event === '' || event === 'message' ? value.type : event;
    if (type === 'message_start') {
      const message = value.message;
      if (!isObject(message)) return;
      this.counts.setModel(message.model);
      this.counts.usage(message.usage);
    } else if (type === 'message_delta') {
      this.counts.usage(value.usage);
    } else if (type === 'error') {
      this.counts.error = true;
    }
  }
}

class JsonTap implements UsageTap {
  private readonly counts = new Counts();
  private head: Buffer[] = [];
  private headBytes = 0;
  /** Past the cap: the last tailBytes, as a ring of chunks. */
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private over = false;
  private done: TapResult | undefined;

  constructor(private readonly limits: TapLimits) {}

  write(chunk: Uint8Array): void {
    if (this.done || chunk.byteLength === 0) return;
    // Copied: the chunk itself goes on to the client.
    let copy = Buffer.from(chunk);
    if (!this.over) {
      const room = this.limits.maxJsonBytes - this.headBytes;
      const kept = copy.length <= room ? copy : copy.subarray(0, room);
      this.head.push(kept);
      this.headBytes += kept.length;
      if (kept.length === copy.length) return;
      this.over = true;
      copy = copy.subarray(room);
    }
    this.tail.push(copy);
    this.tailBytes += copy.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= this.limits.tailBytes) this.tailBytes -= this.tail.shift()!.length;
  }

  end(): TapResult {
    if (this.done) return this.done;
    const head = Buffer.concat(this.head, this.headBytes).toString('utf8');
    this.head = [];
    if (!this.over) {
      let value: unknown;
      try {
        value = JSON.parse(head);
      } catch {
        this.done = this.counts.result(false);
        return this.done;
      }
      if (isObject(value)) {
        if (value.type === 'error') this.counts.error = true;
        this.counts.setModel(value.model);
        this.counts.usage(value.usage);
      }
      this.done = this.counts.result(true);
      return this.done;
    }
    // Too long to keep whole: the model from the head, the usage from the tail.
    this.counts.setModel(/^\s*\{[^]*?"model"\s*:\s*"([^"\\]{1,200})"/.exec(head.slice(0, 64 * 1024))?.[1]);
    this.counts.usage(lastUsageObject(Buffer.concat(this.tail, this.tailBytes).toString('utf8')));
    this.tail = [];
    this.done = this.counts.result(false);
    return this.done;
  }
}

/** The last `"usage": {...}` object in a piece of JSON text (the Messages API puts it last). */
function lastUsageObject(text: string): unknown {
  const at = text.lastIndexOf('"usage"');
  return at < 0 || text[at - 1] === '\\' ? undefined : objectAfter(text, at + '"usage"'.length);
}

/** The object value of `key` when the text names that key exactly once (so it cannot be some other object's). */
function soleObject(text: string, key: string): unknown {
  const at = text.indexOf(key);
  if (at < 0 || text.indexOf(key, at + key.length) !== -1) return undefined;
  return objectAfter(text, at + key.length);
}

/** The string value of `key` when the text names that key exactly once. */
function soleString(text: string, key: string): string | undefined {
  const at = text.indexOf(key);
  if (at < 0 || text.indexOf(key, at + key.length) !== -1) return undefined;
  return /^\s*:\s*"([^"\\]{0,200})"/.exec(text.slice(at + key.length, at + key.length + 256))?.[1];
}

/** The JSON object right after a key (`: {...}`), parsed; undefined when there is none or it does not parse. */
function objectAfter(text: string, from: number): unknown {
  let i = from;
  while (text.charCodeAt(i) === 0x20) i++;
  if (text[i] !== ':') return undefined;
  i++;
  while (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x0a || text.charCodeAt(i) === 0x09 || text.charCodeAt(i) === 0x0d) i++;
  if (text[i] !== '{') return undefined;
  const open = i;
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) {
      try {
        return JSON.parse(text.slice(open, i + 1));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A count the upstream reported, if it is one: a finite, non-negative number (floored, clamped). */
export function tokenCount(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return undefined;
  return Math.min(Math.floor(value), MAX_TOKENS);
}

/** A model name as the API spells them (claude-sonnet-4-5-20250929); anything else is not recorded as one. */
export function modelName(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return /^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/.test(value) ? value : undefined;
}
