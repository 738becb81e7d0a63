import { createInterface } from 'node:readline';
import { describeError } from '../../errors.js';
import type { ApiClient } from '../api-client.js';
import { forTerminal } from '../terminal-text.js';
import { exchange, type Exchange } from './exchange.js';
import { placeLabel, type ChatPlace } from './place.js';
import type { TurnView } from './turn-view.js';

/**
 * `tagbox chat` at a terminal with no TEXT: a prompt (on stderr, so stdout
 * stays the agent's output) where each line is a message in one thread — the
 * first starts it, unless --thread named one. A line typed while a turn runs
 * waits for it to end. Ctrl-C during a turn stops the turn (the thread says
 * so); a second Ctrl-C leaves (exit 130), as does Ctrl-C at the prompt
 * (exit 0) or Ctrl-D (exit 0 at the prompt, 130 during a turn).
 */
export function converse(client: ApiClient, place: ChatPlace, options: { thread?: string; view: TurnView }): Promise<number> {
  const { view } = options;
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true, prompt: `${placeLabel(place)}> ` });
  let thread = options.thread;
  let cursor = 0;
  const lines: string[] = [];
  let current: { exchange: Exchange; stopping: boolean } | undefined;
  let finished = false;

  return new Promise<number>((resolve) => {
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      thread = current?.exchange.thread ?? thread;
      if (current) {
        current.exchange.leave();
        view.note('left while the turn runs: it goes on in the thread');
      }
      rl.close();
      // The prompt (or a line of output) is still on the screen's last line.
      process.stderr.write('\n');
      if (thread !== undefined) process.stderr.write(`thread: ${forTerminal(thread)}\n`);
      resolve(code);
    };

    const next = async () => {
      const text = lines.shift();
      if (finished) return;
      if (text === undefined) return rl.prompt();
      const ex = exchange(client, place, text, { ...(thread !== undefined ? { thread } : {}), after: cursor, view });
      current = { exchange: ex, stopping: false };
      try {
        const result = await ex.result;
        if (result.kind === 'answered') {
          thread = result.thread;
          cursor = result.cursor;
        }
      } catch (error) {
        // The thread goes on; so does the prompt (the server may be back for the next line).
        view.note(describeError(error));
      } finally {
        current = undefined;
      }
      void next();
    };

    rl.on('line', (line) => {
      if (line.trim()) lines.push(line);
      if (!current) void next();
    });
    rl.on('SIGINT', () => {
      if (!current) return finish(0);
      if (current.stopping) return finish(130);
      current.stopping = true;
      view.note('stopping the turn (Ctrl-C again to leave)');
      current.exchange.cancel();
    });
    rl.on('close', () => finish(current ? 130 : 0));
    rl.prompt();
  });
}
