import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { describeError, invalidInput, TagboxError } from '../errors.js';
import { encodeFrame, FRAME, FrameReader, type ExecDone, type ExecRequest, type GrantAnswer, type GrantRequest } from '../server/exec-protocol.js';

/** What a hand-off ended with: the exit status, or nothing when no `tagbox up` answered (run it here instead). */
export type HandOffResult = { exitCode: number } | undefined;

/**
 * The client side of exec-service.ts: the command goes to the running
 * `tagbox up` (its sandbox built ahead, its proxy warm) and its output, exit
 * status and errors come back as if it had run here. Only a server that is not
 * there (no socket, or nobody listening on it) makes this answer undefined;
 * once connected, what happens is the server's to say. This file loads
 * nothing but Node and the frame codec: it is all a handed-off exec loads.
 */
export interface HandOffRequest extends Omit<ExecRequest, 'grant' | 'stdin'> {
  /** The bundle file and the names chosen from it: granted to the proxy on `grantSocket`, never sent to the server. */
  bundles?: { file: string; names: string[] };
}

export async function handOff(sockets: { exec: string; grant: string }, request: HandOffRequest, stopped: AbortSignal): Promise<HandOffResult> {
  const { bundles, ...rest } = request;
  // The bundle file is read here, as the caller: no server opens a client's file.
  const text = bundles ? readBundleFile(bundles.file) : undefined;
  const [socket, granted] = await Promise.all([
    connect(sockets.exec),
    bundles && text !== undefined ? askGrant(sockets.grant, { file: bundles.file, text, bundle: bundles.names }) : undefined,
  ]);
  // No server, or no proxy to grant the bundles: run alone (an unused grant expires).
  if (!socket || (bundles && !granted)) {
    socket?.destroy();
    return undefined;
  }
  if (granted && !granted.ok) {
    socket.destroy();
    throw new TagboxError(granted.error, { exitCode: granted.exitCode === 2 ? 2 : 1 });
  }
  const stdin = process.stdin.isTTY ? undefined : process.stdin;
  const message: ExecRequest = { ...rest, ...(granted ? { grant: granted.grant } : {}), stdin: stdin !== undefined };
  return new Promise<HandOffResult>((resolve, reject) => {
    const reader = new FrameReader();
    let done: ExecDone | undefined;
    const onAbort = () => socket.write(encodeFrame(FRAME.SIGNAL, 'SIGTERM'));
    stopped.addEventListener('abort', onAbort, { once: true });
    socket.write(encodeFrame(FRAME.REQUEST, JSON.stringify(message)));
    if (stdin) {
      stdin.on('data', (chunk: Buffer) => {
        if (!socket.write(encodeFrame(FRAME.STDIN, chunk))) {
          stdin.pause();
          socket.once('drain', () => stdin.resume());
        }
      });
      stdin.once('end', () => socket.write(encodeFrame(FRAME.STDIN_END)));
      stdin.on('error', () => socket.write(encodeFrame(FRAME.STDIN_END)));
    }
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (error) {
        socket.destroy(new Error(`tagbox up sent a bad frame: ${describeError(error)}`));
        return;
      }
      for (const frame of frames) {
        if (frame.kind === FRAME.STDOUT || frame.kind === FRAME.STDERR) {
          const out = frame.kind === FRAME.STDOUT ? process.stdout : process.stderr;
          if (!out.write(frame.payload)) {
            socket.pause();
            out.once('drain', () => socket.resume());
          }
        } else if (frame.kind === FRAME.DONE) {
          done = JSON.parse(frame.payload.toString('utf8')) as ExecDone;
        }
      }
    });
    socket.on('error', (error) => reject(new TagboxError(`the command handed to tagbox up: ${error.message}`)));
    socket.on('close', () => {
      stopped.removeEventListener('abort', onAbort);
      stdin?.destroy();
      if (!done) return reject(new TagboxError('tagbox up closed the connection before the command finished (is it stopping?)'));
      if (!('error' in done)) return resolve({ exitCode: done.exitCode });
      // As the one-shot exec says them: a sandbox that cannot be set up is 125 with the reason; the rest are errors.
      if (done.exitCode === 1 || done.exitCode === 2) return reject(new TagboxError(done.error, { exitCode: done.exitCode }));
      process.stderr.write(`tagbox: ${done.error}\n`);
      resolve({ exitCode: done.exitCode });
    });
  });
}

function readBundleFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw invalidInput(`${path}: cannot read bundle file: ${describeError(error)}`, 'invalid_bundles');
  }
}

/** The proxy's answer on its grant socket; undefined when nothing answers there. */
export function askGrant(path: string, request: GrantRequest): Promise<GrantAnswer | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    let line = '';
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => (line += chunk.toString('utf8')));
    socket.once('error', () => resolve(undefined));
    socket.once('close', () => {
      try {
        resolve(JSON.parse(line) as GrantAnswer);
      } catch {
        resolve(undefined);
      }
    });
  });
}

/** Connected, or undefined when no server is there to hand to (no socket file, a stale one, or one we may not use). */
function connect(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => resolve(undefined));
  });
}
