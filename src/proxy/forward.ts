import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { HOP_BY_HOP } from './headers.js';

/** What an upstream answered, as far as the proxy passed it on. */
export interface Forwarded {
  status: number;
  /** Body bytes passed to the client. */
  bytes: number;
}

export interface ForwardWatch {
  /** Called with the answer's status and headers before they are passed on (a meter, a tap). */
  onResponse?(status: number, headers: IncomingHttpHeaders): void;
  onData?(chunk: Buffer): void;
  /** Before the end is passed on: what was read is counted before the client can send its next request. */
  onEnd?(): void;
}

/**
 * Sends one request upstream and passes the answer straight to the client's
 * response, through undici's dispatch: raw headers filtered once, body chunks
 * written as they come, with backpressure both ways. (undici's `request` plus a
 * stream pipeline made a Readable, an AbortSignal and several promises per request.)
 * Resolves when the answer has been passed on or the client went away; rejects
 * only when nothing was sent to the client yet (the caller answers 502/504).
 */
export function forward(pool: Dispatcher, options: Dispatcher.DispatchOptions, res: ServerResponse, watch: ForwardWatch = {}): Promise<Forwarded> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let bytes = 0;
    let settled = false;
    let abort: ((reason?: Error) => void) | undefined;
    let resumeUpstream: (() => void) | undefined;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      res.off('close', onClientClose);
      res.off('drain', onDrain);
      if (error && !res.headersSent) reject(error);
      else {
        // Mid-answer: the client sees a cut connection, not a second status line.
        if (error) res.destroy();
        resolve({ status, bytes });
      }
    };
    const onClientClose = () => {
      if (!res.writableFinished) abort?.(new Error('the client closed the connection'));
      settle();
    };
    const onDrain = () => resumeUpstream?.();
    res.on('close', onClientClose);
    res.on('drain', onDrain);

    const handler: Dispatcher.DispatchHandler = {
      onConnect(abortRequest) {
        abort = abortRequest;
        if (settled) abortRequest(new Error('the client closed the connection'));
      },
      onHeaders(statusCode, rawHeaders, resume) {
        status = statusCode;
        resumeUpstream = resume;
        const raw = rawHeaders as unknown as Buffer[];
        if (watch.onResponse) watch.onResponse(statusCode, headerRecord(raw));
        res.writeHead(statusCode, forwardableRawHeaders(raw));
        return true;
      },
      onData(chunk) {
        bytes += chunk.length;
        watch.onData?.(chunk);
        return res.write(chunk);
      },
      onComplete() {
        watch.onEnd?.();
        res.end();
        settle();
      },
      onError(error) {
        settle(error);
      },
    };
    try {
      pool.dispatch(options, handler);
    } catch (error) {
      settle(error as Error);
    }
  });
}

/**
 * Response headers to pass back as a flat [name, value, ...] list, in the
 * upstream's order and spelling, minus hop-by-hop ones, Proxy-* and whatever
 * Connection names (as forwardableResponseHeaders does for a header object).
 */
export function forwardableRawHeaders(raw: ReadonlyArray<Buffer | string>): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toString().toLowerCase() === 'connection') {
      named ??= new Set();
      for (const token of raw[i + 1]!.toString().split(',')) {
        const t = token.trim().toLowerCase();
        if (t) named.add(t);
      }
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if ((HOP_BY_HOP.has(lower) && lower !== 'host') || lower.startsWith('proxy-') || named?.has(lower)) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  return out;
}

/** Raw headers as Node's header object (lower-case names; repeats joined, set-cookie kept as a list). */
function headerRecord(raw: ReadonlyArray<Buffer | string>): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const had = out[name];
    if (had === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(had)) had.push(value);
    else out[name] = `${had}, ${value}`;
  }
  return out as IncomingHttpHeaders;
}
