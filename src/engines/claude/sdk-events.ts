import type { EngineEvent } from '../engine.js';

/**
 * The SDK's stream, as the thread sees it (pure; DESIGN.md "Engines"):
 * streamed text -> `progress`, each tool use -> `progress` ("running `npm
 * test`"), the result -> the answer (`message`) and `usage`; a result that is
 * an error -> `error` with why. Messages of sub-agents (parent_tool_use_id set)
 * show their tool uses only. Typed loosely on purpose: the SDK's types are
 * large and the stream is data from inside the sandbox.
 */
export interface SdkStreamMessage {
  type: string;
  subtype?: string;
  [key: string]: unknown;
}

export interface TurnOutcome {
  /** The final answer was posted. */
  answered: boolean;
  /** Why the engine stopped short, when it did. */
  failure?: string;
}

export function eventsOf(message: SdkStreamMessage): EngineEvent[] {
  switch (message.type) {
    case 'stream_event':
      return streamEvent(message);
    case 'assistant':
      return toolUses(message);
    case 'result':
      return resultEvents(message);
    default:
      return [];
  }
}

function streamEvent(message: SdkStreamMessage): EngineEvent[] {
  if (message.parent_tool_use_id) return [];
  const event = message.event as { type?: string; delta?: { type?: string; text?: unknown } } | undefined;
  if (event?.type === 'content_block_delta' && event.delta?.type === 'text_delta' && typeof event.delta.text === 'string' && event.delta.text) {
    return [{ type: 'progress', text: event.delta.text }];
  }
  return [];
}

function toolUses(message: SdkStreamMessage): EngineEvent[] {
  const content = (message.message as { content?: unknown } | undefined)?.content;
  if (!Array.isArray(content)) return [];
  const events: EngineEvent[] = [];
  for (const block of content as Array<{ type?: string; name?: unknown; input?: unknown }>) {
    if (block?.type !== 'tool_use' || typeof block.name !== 'string') continue;
    events.push({ type: 'progress', text: `\n${describeToolUse(block.name, block.input)}\n` });
  }
  return events;
}

/** "running `npm test`", "reading src/app.ts": one line, short. */
export function describeToolUse(name: string, input: unknown): string {
  const args = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  const str = (key: string) => (typeof args[key] === 'string' ? oneLine(args[key] as string) : undefined);
  switch (name) {
    case 'Bash':
      return str('command') ? `running \`${str('command')}\`` : 'running a command';
    case 'Read':
      return str('file_path') ? `reading ${str('file_path')}` : 'reading a file';
    case 'Write':
      return str('file_path') ? `writing ${str('file_path')}` : 'writing a file';
    case 'Edit':
    case 'NotebookEdit':
      return str('file_path') ?? str('notebook_path') ? `editing ${str('file_path') ?? str('notebook_path')}` : 'editing a file';
    case 'Grep':
      return str('pattern') ? `searching for \`${str('pattern')}\`` : 'searching';
    case 'Glob':
      return str('pattern') ? `listing ${str('pattern')}` : 'listing files';
    case 'Agent':
    case 'Task':
      return str('description') ? `starting a sub-agent: ${str('description')}` : 'starting a sub-agent';
    case 'Skill':
      return str('skill') ?? str('name') ? `using the skill ${str('skill') ?? str('name')}` : 'using a skill';
    default:
      return `using ${oneLine(name)}`;
  }
}

function resultEvents(message: SdkStreamMessage): EngineEvent[] {
  const events: EngineEvent[] = [{ type: 'usage', data: usageOf(message) }];
  const text = typeof message.result === 'string' ? message.result : '';
  if (message.subtype === 'success' && !message.is_error) {
    events.push({ type: 'message', text: text.trim() ? text : '(The agent finished without a reply.)' });
    return events;
  }
  events.push({ type: 'error', message: failureOf(message) });
  return events;
}

/** Why a result is an error, in words for the thread. */
export function failureOf(message: SdkStreamMessage): string {
  const turns = typeof message.num_turns === 'number' ? message.num_turns : undefined;
  switch (message.subtype) {
    case 'error_max_turns':
      return `the agent stopped after ${turns ?? 'the maximum number of'} model turns (agent.maxTurns); ask it to continue, or an admin can raise the limit`;
    case 'error_max_budget_usd':
      return 'the agent stopped: this turn reached its spending limit';
    default: {
      const errors = Array.isArray(message.errors) ? (message.errors as unknown[]).filter((e): e is string => typeof e === 'string') : [];
      const said = typeof message.result === 'string' && message.result.trim() ? message.result : errors.join('; ');
      return said ? `the agent stopped: ${oneLine(said, 600)}` : 'the agent stopped with an error';
    }
  }
}

function usageOf(message: SdkStreamMessage): Record<string, unknown> {
  const usage = (message.usage ?? {}) as Record<string, unknown>;
  const num = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
  return {
    inputTokens: num(usage.input_tokens),
    outputTokens: num(usage.output_tokens),
    cacheReadTokens: num(usage.cache_read_input_tokens),
    cacheCreationTokens: num(usage.cache_creation_input_tokens),
    modelTurns: num(message.num_turns),
    durationMs: num(message.duration_ms),
    // The engine's own estimate; what is billed is metered at the proxy.
    engineCostUsd: num(message.total_cost_usd),
  };
}

function oneLine(text: string, max = 200): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
