import { capTail } from '../util/output-limits.js';
import type { Engine, EngineEvent, EngineTurn } from './engine.js';
import { withoutMention } from './mention.js';

export interface ShellEngineOptions {
  /** The longest final message (agent.maxReplyBytes); of the output it keeps the tail (errors come last). */
  maxReplyBytes: number;
}

/**
 * The `shell` engine: each message of the turn, with the mention removed, runs
 * as `sh -c TEXT` in the sandbox, in order, in /workspace (which lives as long
 * as the sandbox). Output streams as progress; each command's final message
 * has its output (capped, with a note when cut) and its exit code. ChatOps,
 * and the deterministic engine the tests drive the whole path with.
 */
export function shellEngine(options: ShellEngineOptions): Engine {
  return {
    name: 'shell',
    async *runTurn(turn: EngineTurn): AsyncIterable<EngineEvent> {
      let exitCode = 0;
      for (const message of turn.messages) {
        if (turn.signal.aborted) break;
        // Earlier messages of the thread are context for a model, never commands.
        if (message.context) continue;
        const command = withoutMention(message.text);
        if (!command) {
          yield { type: 'message', text: 'Nothing to run: with the shell engine, a message is a shell command (for example `uname -a`).' };
          continue;
        }
        const handle = turn.exec({ argv: ['sh', '-c', command], cwd: '/workspace', signal: turn.signal });
        const output = new OutputTail(outputRoom(options.maxReplyBytes));
        for await (const chunk of merge(handle.stdout, handle.stderr)) {
          output.push(chunk);
          yield { type: 'progress', text: chunk.toString('utf8') };
        }
        const result = await handle.result;
        exitCode = result.exitCode;
        yield { type: 'message', text: output.reply(result.exitCode, result.cancelled === true, result.limit) };
      }
      yield { type: 'result', exitCode };
    },
  };
}

/**
 * How much of the output fits in a reply of `maxReplyBytes` with the cut note
 * before it and the status line after it (each well under 100 bytes): the
 * reply as a whole is capped again when posted, and that cap would cut off
 * the `[exit code N]` line.
 */
function outputRoom(maxReplyBytes: number): number {
  return maxReplyBytes - Math.min(200, Math.floor(maxReplyBytes / 2));
}

/** The last `max` bytes of a command's output, and how much there was. */
class OutputTail {
  private chunks: Buffer[] = [];
  private held = 0;
  private total = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.held += chunk.length;
    while (this.held - this.chunks[0]!.length >= this.max) this.held -= this.chunks.shift()!.length;
  }

  reply(exitCode: number, cancelled: boolean, limit: string | undefined): string {
    const { text, cut } = capTail(Buffer.concat(this.chunks).toString('utf8'), this.max, this.total);
    const status = cancelled ? 'stopped' : limit ? `stopped by the ${limit} limit, exit code ${exitCode}` : `exit code ${exitCode}`;
    const body = text.length ? text.replace(/\n?$/, '\n') : '(no output)\n';
    return `${cut ? `${cut}\n` : ''}${body}[${status}]`;
  }
}

/** stdout and stderr as one stream of chunks, in arrival order. */
async function* merge(...streams: NodeJS.ReadableStream[]): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let open = streams.length;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  for (const stream of streams) {
    stream.on('data', (chunk: Buffer | string) => {
      queue.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      notify();
    });
    stream.on('end', () => {
      open--;
      notify();
    });
    stream.on('error', () => {
      open--;
      notify();
    });
  }
  while (open > 0 || queue.length) {
    if (queue.length) {
      yield queue.shift()!;
      continue;
    }
    await new Promise<void>((resolve) => (wake = resolve));
  }
}
