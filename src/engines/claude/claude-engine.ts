import { creditLine } from '../../sessions/turn-credit.js';
import { createHash } from 'node:crypto';
import type { ExecHandle, ExecRequest } from '../../sandbox/types.js';
import type { Engine, EngineEvent, EngineMessage, EngineTurn } from '../engine.js';
import { CLAUDE_BINARY_INSIDE, claudeMount } from './claude-binary.js';
import { DISABLED_TOOL_NAMES } from './disabled-tools.js';
import { InputQueue } from './input-queue.js';
import { promptOf } from './prompt.js';
import { SandboxedProcess, type EngineSpawnOptions } from './sandbox-spawn.js';
import { eventsOf, type SdkStreamMessage } from './sdk-events.js';
import { systemPromptAppend } from './system-prompt.js';

export interface ClaudeEngineOptions {
  /** The installed binary's directory on the host (findClaudeBinary()). */
  binaryDir: string;
  /** agent.model: always explicit, never the engine's own default. */
  model: string;
  /** agent.maxTurns: model turns per invocation. */
  maxTurns: number;
  /** The engine process's wall-clock limit inside the sandbox (the turn's timeout). */
  timeoutMs: number;
}

/** The key the sandbox holds: never the real one, which only the proxy injects (invariant 4). */
export const PLACEHOLDER_API_KEY = 'sk-ant-tagbox-placeholder-the-agent-proxy-injects-the-real-key';

/** The engine's home in the sandbox: its transcript lives under ~/.claude/projects/ (the engine state). */
export const CLAUDE_STATE_DIR = '/home/agent/.claude';

/** The same working directory on every rebuild, so that resume finds the transcript. */
const WORKDIR = '/workspace';

/**
 * Only these reach the engine process (on top of the sandbox's own PATH,
 * HOME, proxy and CA variables): a placeholder key, and every kind of
 * traffic that is not the model's off.
 */
const ENGINE_ENV: Record<string, string> = {
  ANTHROPIC_API_KEY: PLACEHOLDER_API_KEY,
  ANTHROPIC_BASE_URL: 'https://api.anthropic.com',
  IS_SANDBOX: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  // Belt and braces beside DISABLED_TOOLS: the engine's own scheduler, web fetch and artifacts off at the source.
  CLAUDE_CODE_DISABLE_CRON: '1',
  CLAUDE_CODE_DISABLE_WEB_FETCH: '1',
  CLAUDE_CODE_DISABLE_ARTIFACT: '1',
  CLAUDE_AGENT_SDK_CLIENT_APP: 'tagbox',
};

/**
 * The `claude` engine: the Claude Agent SDK drives, on the host, a `claude`
 * process that runs inside the session's sandbox (spawned through its exec
 * channel), so every tool it runs and every request it makes is the
 * sandbox's. One process per turn; the conversation continues across turns
 * and sandboxes through the transcript (engine state), resumed by a session
 * id derived from Tagbox's.
 */
export function claudeEngine(options: ClaudeEngineOptions): Engine {
  return {
    name: 'claude',
    stateDir: CLAUDE_STATE_DIR,
    mounts: [claudeMount(options.binaryDir)],
    runTurn: (turn) => runClaudeTurn(options, turn),
  };
}

async function* runClaudeTurn(options: ClaudeEngineOptions, turn: EngineTurn): AsyncIterable<EngineEvent> {
  // Optional dependency: loaded only when a claude turn runs.
  const { query } = await import('@anthropic-ai/claude-agent-sdk');
  const conversation = conversationId(turn.sessionId);
  const resume = await hasTranscript(turn.exec, conversation);
  const input = new InputQueue<ReturnType<typeof userMessage>>();
  input.push(userMessage(turn.messages));
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  turn.signal.addEventListener('abort', onAbort, { once: true });
  let engineProcess: SandboxedProcess | undefined;
  const failures: string[] = [];
  let answered = false;
  try {
    const stream = query({
      prompt: input,
      options: {
        pathToClaudeCodeExecutable: CLAUDE_BINARY_INSIDE,
        spawnClaudeCodeProcess: (spawn: EngineSpawnOptions) => {
          engineProcess = new SandboxedProcess(turn.exec, spawn, { timeoutMs: options.timeoutMs, env: ENGINE_ENV });
          return engineProcess;
        },
        cwd: WORKDIR,
        env: { ...ENGINE_ENV },
        settingSources: [],
        model: options.model,
        disallowedTools: [...DISABLED_TOOL_NAMES],
        // The sandbox is the boundary: inside it the agent may do anything, and no one is there to approve.
        permissionMode: 'bypassPermissions',
        allowDangerouslySkipPermissions: true,
        includePartialMessages: true,
        maxTurns: options.maxTurns,
        ...(resume ? { resume: conversation } : { sessionId: conversation }),
        systemPrompt: {
          type: 'preset',
          preset: 'claude_code',
          append: systemPromptAppend({
            place: turn.setting.place,
            ...(turn.setting.instructions.org ? { orgInstructions: turn.setting.instructions.org } : {}),
            ...(turn.setting.instructions.channel ? { channelInstructions: turn.setting.instructions.channel } : {}),
            ...(turn.setting.memory ? { memory: turn.setting.memory } : {}),
            ...(turn.setting.credit ? { credit: { name: turn.setting.credit.name, branch: turn.setting.credit.branch, line: creditLine(turn.setting.credit) } } : {}),
          }),
        },
        plugins: turn.setting.plugins.map((p) => ({ type: 'local' as const, path: p.path })),
        abortController: abort,
      },
    });
    for await (const message of stream as AsyncIterable<SdkStreamMessage>) {
      for (const event of eventsOf(message)) {
        if (event.type === 'error') failures.push(event.message);
        if (event.type === 'message') answered = true;
        yield event;
      }
      if (message.type !== 'result') continue;
      // Answered: messages that came meanwhile join this turn, else the input ends (and the process with it).
      const more = turn.signal.aborted || !turn.takeArrivals ? [] : await turn.takeArrivals();
      if (more.length) input.push(userMessage(more));
      else input.close();
    }
  } catch (error) {
    if (turn.signal.aborted) return;
    // The SDK throws after an error result: what the result said is the better reason.
    if (failures.length) throw new Error(failures.join('; '));
    const why = engineProcess?.stderr.trim().split('\n').slice(-3).join(' ') || (error instanceof Error ? error.message : String(error));
    throw new Error(`the claude engine stopped: ${why}`);
  } finally {
    turn.signal.removeEventListener('abort', onAbort);
    input.close();
  }
  if (failures.length && !turn.signal.aborted) throw new Error(failures.join('; '));
  if (!answered && !turn.signal.aborted) throw new Error('the claude engine ended without an answer');
  yield { type: 'result' };
}

function userMessage(messages: EngineMessage[]) {
  return {
    type: 'user' as const,
    message: { role: 'user' as const, content: promptOf(messages) },
    parent_tool_use_id: null,
    origin: { kind: 'human' as const },
  };
}

/** The engine's conversation id for a Tagbox session: a UUID, the same on every rebuild. */
export function conversationId(sessionId: string): string {
  const h = createHash('sha256').update(`tagbox-session:${sessionId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Whether the sandbox holds this conversation's transcript (restored, or kept from an earlier turn). */
async function hasTranscript(exec: (request: ExecRequest) => ExecHandle, conversation: string): Promise<boolean> {
  const handle = exec({ argv: ['sh', '-c', `ls ${CLAUDE_STATE_DIR}/projects/*/${conversation}.jsonl >/dev/null 2>&1`] });
  handle.stdout.resume();
  handle.stderr.resume();
  return (await handle.result).exitCode === 0;
}
