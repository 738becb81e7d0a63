import type { ExecHandle, ExecRequest } from '../sandbox/types.js';

/**
 * The engine seam (DESIGN.md "Engines"). An engine runs one turn of a session
 * *inside* its sandbox — everything it does goes through `exec` — and yields
 * what the thread should see. The host never interprets what it yields: text
 * is capped, rate-limited and posted as data by the session layer.
 */
export interface Engine {
  readonly name: string;
  /**
   * A directory in the sandbox holding the engine's own state (a transcript):
   * copied out after each turn and restored when the sandbox is rebuilt, so the
   * conversation survives the sandbox (invariant 11). Undefined: stateless.
   */
  readonly stateDir?: string;
  runTurn(turn: EngineTurn): AsyncIterable<EngineEvent>;
}

export interface EngineTurn {
  sessionId: string;
  /** The messages this turn answers, oldest first, with their authors. */
  messages: Array<{ text: string; author: { kind: string; id?: string; name?: string } }>;
  /** Runs one command in the session's sandbox. */
  exec(request: ExecRequest): ExecHandle;
  /** Aborted when the turn is cancelled or runs out of time; the engine stops promptly. */
  signal: AbortSignal;
  /** Whether this turn's sandbox was just (re)built with the engine's state restored. */
  restored: boolean;
}

export type EngineEvent =
  | { type: 'progress'; text: string }
  /** A message the agent posts in the thread. */
  | { type: 'message'; text: string }
  | { type: 'usage'; data: Record<string, unknown> }
  | { type: 'error'; message: string }
  /** The turn's result, once, last (the shell engine's exit code). */
  | { type: 'result'; exitCode?: number };

/** Engines by name; the session's engine is chosen when it is created (channel setting, else agent.engine). */
export class EngineRegistry {
  private readonly engines = new Map<string, Engine>();

  constructor(engines: Engine[] = []) {
    for (const engine of engines) this.add(engine);
  }

  add(engine: Engine): this {
    this.engines.set(engine.name, engine);
    return this;
  }

  get(name: string): Engine | undefined {
    return this.engines.get(name);
  }

  names(): string[] {
    return [...this.engines.keys()];
  }
}
