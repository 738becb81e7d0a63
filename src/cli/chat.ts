import type { Command } from 'commander';
import { invalidInput } from '../errors.js';
import { apiClient, withApiFlags, type ApiClient, type ApiFlags } from './api-client.js';
import { converse } from './chat/conversation.js';
import { exchange } from './chat/exchange.js';
import { resolvePlace, type ChatPlace } from './chat/place.js';
import { jsonView, textView, type TurnView } from './chat/turn-view.js';
import { contextFrom } from './context.js';
import { forTerminal } from './terminal-text.js';

interface ChatFlags extends ApiFlags {
  channel?: string;
  dm?: boolean;
  thread?: string;
  json?: boolean;
}

/**
 * `tagbox chat [--channel NAME | --dm] [--thread ID] [--json] [TEXT...]`:
 * talk to the agent from a terminal, over the chat API as a member (by
 * default the local Owner, whose token `tagbox up` left in TAGBOX_HOME).
 * TEXT, else stdin when it is not a terminal, is one message: posted, its
 * turn followed to the end, the exit code the turn's. With neither, a prompt.
 */
export function registerChat(program: Command): void {
  withApiFlags(
    program
      .command('chat')
      .description('talk to the agent: post a message and print its replies (no TEXT: read stdin, or prompt at a terminal)')
      .argument('[text...]', 'the message (with the shell engine, a command); options go before it')
      .option('--channel <name>', 'a channel by name (with or without #) or id (default: #general)')
      .option('--dm', 'your DM with the agent, where it acts as you')
      .option('--thread <id>', 'continue this thread (each run ends with `thread: ID` on stderr)')
      .option('--json', 'print each event of the turn as one JSON line instead')
      // `tagbox chat ls -la`: what follows the text is the text.
      .passThroughOptions(),
  ).action(async (words: string[], flags: ChatFlags, command: Command) => {
    if (flags.channel !== undefined && flags.dm) throw invalidInput('--channel and --dm: choose one place, a channel or your DM');
    if (flags.channel !== undefined && !flags.channel.replace(/^#/, '').trim()) throw invalidInput('--channel: expected a channel name or id, got an empty one');
    if (flags.thread !== undefined && !flags.thread.trim()) throw invalidInput('--thread: expected a thread id, got an empty one');
    const ctx = contextFrom(command, { createHome: false });
    const client = apiClient(ctx, flags);
    const view = (flags.json ? jsonView : textView)(process.stdout, process.stderr);

    let text = words.length ? words.join(' ') : undefined;
    if (text === undefined && !process.stdin.isTTY) {
      text = await readAll(process.stdin);
      if (!text.trim()) throw invalidInput('stdin: expected the message, got nothing (pass TEXT, or pipe the message in)');
    } else if (text !== undefined && !text.trim()) {
      throw invalidInput('TEXT: expected a message, got an empty one');
    }
    const place = await resolvePlace(client, flags);
    process.exitCode = text === undefined ? await converse(client, place, { ...(flags.thread ? { thread: flags.thread } : {}), view }) : await once(client, place, text, flags.thread, view);
  });
}

/** One message: its turn's exit code. Ctrl-C stops the turn; a second one leaves it running (exit 130). */
async function once(client: ApiClient, place: ChatPlace, text: string, thread: string | undefined, view: TurnView): Promise<number> {
  const ex = exchange(client, place, text, { ...(thread !== undefined ? { thread } : {}), view });
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts += 1;
    if (interrupts === 1) {
      view.note('stopping the turn (Ctrl-C again to leave it running)');
      ex.cancel();
    } else {
      ex.leave();
    }
  };
  process.on('SIGINT', onInterrupt);
  try {
    const result = await ex.result;
    if (result.thread !== undefined) process.stderr.write(`thread: ${forTerminal(result.thread)}\n`);
    return result.kind === 'answered' ? result.exitCode : result.kind === 'refused' ? 1 : 130;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
