import { forTerminal, jsonLineForTerminal } from '../terminal-text.js';
import { addedByMessage } from '../../util/repeat.js';
import type { ThreadEvent } from './thread-events.js';

/** Where the view writes; process.stdout and process.stderr in the CLI. */
export interface Sink {
  write(text: string): unknown;
}

/**
 * How one turn of a thread reaches the terminal. stdout carries the agent's
 * output: progress as it arrives, then what the agent's message adds to it;
 * stderr carries everything about the conversation (`tagbox: ...`): system
 * messages, others' messages, notices, queue status, errors, the client's own
 * reconnects. Everything from the server passes through forTerminal first.
 */
export interface TurnView {
  /** Our own message, as the thread recorded it. */
  own(event: ThreadEvent): void;
  /** Any other event of our turn but its `done`. */
  show(event: ThreadEvent): void;
  /** The turn's `done`; returns the exit code it stands for. */
  done(event: ThreadEvent): number;
  /** Something the client itself has to say. */
  note(text: string): void;
}

/** Keeps the end of the stream only: an agent's message is at most 1 MiB (agent.maxReplyBytes). */
const STREAMED_KEPT = 2 * 1024 * 1024;

export function textView(stdout: Sink, stderr: Sink): TurnView {
  let streamed = '';
  let atLineStart = true;
  let saidQueued = false;
  let systemSpoke = false;
  const out = (text: string) => {
    if (!text) return;
    stdout.write(text);
    atLineStart = text.endsWith('\n');
  };
  const note = (text: string) => {
    stderr.write(`tagbox: ${forTerminal(text).replace(/\n+$/, '')}\n`);
  };
  const endLine = () => {
    if (!atLineStart) out('\n');
  };
  return {
    own() {},
    show(event) {
      const data = event.data;
      if (event.type === 'progress') {
        const text = forTerminal(String(data.text ?? ''));
        out(text);
        streamed = (streamed + text).slice(-STREAMED_KEPT);
      } else if (event.type === 'message') {
        const author = (data.author ?? {}) as { kind?: string; name?: string };
        const text = forTerminal(String(data.text ?? ''));
        if (author.kind === 'agent') {
          const added = addedByMessage(text, streamed);
          streamed = '';
          if (added) {
            endLine();
            out(added.endsWith('\n') ? added : `${added}\n`);
          }
        } else if (author.kind === 'system') {
          systemSpoke = true;
          note(text);
        } else {
          note(`${author.name ?? 'someone'}: ${text}`);
        }
      } else if (event.type === 'status') {
        if (data.state === 'queued') {
          saidQueued = true;
          note(typeof data.text === 'string' ? data.text : `queued: ${String(data.ahead ?? '?')} ahead`);
        } else if (data.state === 'running' && saidQueued) {
          saidQueued = false;
          note('running');
        } else if (typeof data.text === 'string' && data.text) {
          note(data.text);
        }
      } else if (event.type === 'notice') {
        note(typeof data.text === 'string' ? data.text : `notice: ${String(data.host ?? '')}`);
      } else if (event.type === 'error') {
        note(`error: ${String(data.message ?? 'the agent reported an error')}`);
      }
      // `usage`, and event types of a newer server, say nothing here (--json shows them).
    },
    done(event) {
      endLine();
      const status = String(event.data.status ?? '');
      if (status !== 'done' && !systemSpoke) note(`the turn ended: ${status || 'unknown'}`);
      return exitCodeOf(event.data);
    },
    note,
  };
}

/** --json: each event of the turn as one JSON line on stdout, exactly as the server sent it (escaped for the terminal). */
export function jsonView(stdout: Sink, stderr: Sink): TurnView {
  const line = (event: ThreadEvent) => stdout.write(`${jsonLineForTerminal({ id: event.seq, event: event.type, data: event.data })}\n`);
  return {
    own: line,
    show: line,
    done(event) {
      line(event);
      return exitCodeOf(event.data);
    },
    note(text) {
      stderr.write(`tagbox: ${forTerminal(text).replace(/\n+$/, '')}\n`);
    },
  };
}

/**
 * The exit code of a turn: 0 when it is done (and its command exited 0); the
 * shell engine's exit code passed through, within 1..125 (126 and up mean
 * things to shells); 1 when it failed, was cancelled or interrupted.
 */
export function exitCodeOf(done: Record<string, unknown>): number {
  if (done.status !== 'done') return 1;
  const code = done.exitCode;
  if (code === undefined || code === 0) return 0;
  if (typeof code !== 'number' || !Number.isInteger(code)) return 1;
  return Math.min(Math.max(code, 1), 125);
}
