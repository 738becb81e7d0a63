/**
 * `tagbox exec` handed to a running `tagbox up` (exec-service.ts serves it,
 * cli/exec-hand-off.ts asks): length-prefixed frames on a Unix socket, each
 * `[kind: 1 byte][length: 4 bytes, big-endian][payload]`.
 *   client -> server: REQUEST (JSON, first and once), STDIN (bytes), STDIN_END, SIGNAL (its name)
 *   server -> client: STDOUT, STDERR (bytes), DONE (JSON: {exitCode} or {error, exitCode}), last
 * The server checks the peer (SO_PEERCRED) before it reads a byte. This file loads
 * nothing else: the client side of it must start fast.
 */
export const FRAME = {
  REQUEST: 0x52,
  STDIN: 0x49,
  STDIN_END: 0x45,
  SIGNAL: 0x53,
  STDOUT: 0x4f,
  STDERR: 0x58,
  DONE: 0x44,
} as const;

export type FrameKind = (typeof FRAME)[keyof typeof FRAME];

const KINDS = new Set<number>(Object.values(FRAME));

/** The largest payload either side accepts: a request holds the bundle file's text. */
export const MAX_FRAME = 1024 * 1024;

const HEADER = 5;

export function encodeFrame(kind: FrameKind, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const frame = Buffer.allocUnsafe(HEADER + body.length);
  frame[0] = kind;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, HEADER);
  return frame;
}

export interface Frame {
  kind: FrameKind;
  payload: Buffer;
}

/**
 * Frames out of a byte stream cut anywhere. A frame of an unknown kind or over
 * MAX_FRAME is an error (the connection is then closed): nothing past it can be trusted.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    while (this.pending.length >= HEADER) {
      const kind = this.pending[0]!;
      if (!KINDS.has(kind)) throw new Error(`unknown frame kind 0x${kind.toString(16)}`);
      const length = this.pending.readUInt32BE(1);
      if (length > MAX_FRAME) throw new Error(`frame of ${length} bytes is over the limit of ${MAX_FRAME}`);
      if (this.pending.length < HEADER + length) break;
      frames.push({ kind: kind as FrameKind, payload: this.pending.subarray(HEADER, HEADER + length) });
      this.pending = this.pending.subarray(HEADER + length);
    }
    return frames;
  }

  /** Bytes of a frame begun but not finished. */
  get buffered(): number {
    return this.pending.length;
  }
}

/**
 * What the client asks for (validated by the server: exec-service.ts): the command, the grant
 * of its bundles (the client gave the bundle file to the proxy itself: GrantRequest), the limits.
 */
export interface ExecRequest {
  argv: string[];
  grant?: string;
  limits?: { wallMs?: number; memoryBytes?: number; processes?: number; cpuSeconds?: number; outputBytes?: number; diskBytes?: number };
  /** Whether STDIN frames follow (false: the command's stdin is empty, as for a terminal). */
  stdin?: boolean;
}

export type ExecDone = { exitCode: number } | { exitCode: number; error: string };

/** The signals the client forwards (what stops a one-shot exec). */
export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The sockets' names in the home's run directory: the server's, and the proxy's for grants. */
export const EXEC_SOCKET = 'exec.sock';
export const EXEC_GRANT_SOCKET = 'exec-grant.sock';

/**
 * On the proxy's grant socket (proxy/grant-socket.ts), one JSON line each way: the bundle file's
 * name and text and the `--bundle` names; a grant's name for the server, and the bundles' names.
 */
export interface GrantRequest {
  file: string;
  text: string;
  bundle: string[];
}

export type GrantAnswer = { ok: true; grant: string; bundles: string[] } | { ok: false; error: string; exitCode: number };
