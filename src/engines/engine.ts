import type { ExecHandle, ExecRequest, ReadOnlyMount } from '../sandbox/types.js';
import type { TurnCredit } from '../sessions/turn-credit.js';

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
  /** Host paths the engine needs inside every sandbox, read-only (its binary). */
  readonly mounts?: ReadOnlyMount[];
  runTurn(turn: EngineTurn): AsyncIterable<EngineEvent>;
}

export interface EngineMessage {
  text: string;
  author: { kind: string; id?: string; name?: string };
  /** An earlier message of the thread the surface supplied (the agent was tagged mid-thread): context, not a request. */
  context?: boolean;
}

/** Where the turn runs and what the place asks of the agent. */
export interface TurnSetting {
  place: { kind: 'channel'; name?: string } | { kind: 'dm'; memberName?: string };
  /** Custom instructions: the org's, then the channel's (empty: none). */
  instructions: { org?: string; channel?: string };
  /** The place's memory file in the sandbox and what it held when the turn started. */
  memory?: { path: string; content: string };
  /** The session's plugins, by their read-only path in the sandbox. */
  plugins: Array<{ name: string; path: string }>;
  /** Whom the turn's work is credited to (commits, pull requests) and the thread's branch. */
  credit?: TurnCredit;
}

export interface EngineTurn {
  sessionId: string;
  /** The messages this turn answers, oldest first, with their authors. */
  messages: EngineMessage[];
  setting: TurnSetting;
  /**
   * Messages of the thread that arrived since, moved into this turn (for an
   * engine that takes them into a running turn). [] when none came; after an
   * engine last asks, later messages queue the thread's next turn.
   */
  takeArrivals?(): Promise<EngineMessage[]>;
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
