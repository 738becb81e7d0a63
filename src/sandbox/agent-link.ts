import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/**
 * The host's reading of the agent's stdout. Everything a sandbox says is
 * untrusted: a command can reach the agent, so lines are parsed strictly and
 * anything else is ignored.
 */
export type AgentEvent =
  | { kind: 'ready' }
  | { kind: 'fatal'; reason: string }
  | { kind: 'started'; id: string }
  | { kind: 'done'; id: string; status: number };

const ID = /^e\d{1,12}$/;

export function parseAgentLine(line: string): AgentEvent | undefined {
  const [word, id, status] = line.trim().split(' ');
  if (word === 'ready' && id === undefined) return { kind: 'ready' };
  if (word === 'fatal') return { kind: 'fatal', reason: line.trim().slice('fatal '.length).slice(0, 200) };
  if (!id || !ID.test(id)) return undefined;
  if (word === 'started') return { kind: 'started', id };
  if (word === 'done' && status !== undefined && /^\d{1,3}$/.test(status)) {
    return { kind: 'done', id, status: Math.min(Number(status), 255) };
  }
  return undefined;
}

export function onAgentEvents(stream: Readable, listener: (event: AgentEvent) => void): void {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (line) => {
    const event = parseAgentLine(line.slice(0, 512));
    if (event) listener(event);
  });
}
