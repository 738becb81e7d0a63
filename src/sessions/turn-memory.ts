import type { AuditEventInput } from '../audit/events.js';
import type { AuditLog } from '../audit/log.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';
import { copyMemoryIn, copyMemoryOut, MEMORY_PATH, memoryScope, type Exec, type MemoryCopy } from './channel-memory.js';
import { latestMemory, saveMemory } from './memory-repo.js';
import type { Session } from './model.js';

/** The memory as a turn's sandbox has it: what the engine may tell the model. */
export interface SandboxMemory {
  path: string;
  content: string;
  /** The stored version copied in; none while the memory is empty. */
  version?: number;
}

export interface TurnMemoryOptions {
  store: ControlStore;
  audit: AuditLog;
  logger: Logger;
  /** A notice for the turn's thread (a cut or refused memory). */
  onNotice?: (sessionId: string, text: string, turnId: string | undefined) => Promise<void>;
}

interface CopiedIn {
  scope: string;
  content: string;
  version: number | undefined;
  turnId: string | undefined;
}

/**
 * Channel memory around a turn: the latest version is copied into the
 * sandbox before it (another session of the channel may have written since),
 * and after it the file is copied out and saved as a new version when it
 * changed from what was copied in — audited, with the thread told only when
 * it was cut or refused. Neither side ever fails a turn: a memory that could
 * not be copied in is not copied out either (its file is not known to be ours).
 */
export class TurnMemory {
  private readonly copiedIn = new Map<string, CopiedIn>();

  constructor(private readonly options: TurnMemoryOptions) {}

  async copyIn(session: Session, exec: Exec, turnId: string | undefined): Promise<SandboxMemory> {
    const scope = memoryScope(session.place);
    this.copiedIn.delete(session.id);
    let latest;
    try {
      latest = await latestMemory(this.options.store.db, scope);
      await copyMemoryIn(exec, latest?.content ?? '');
      this.copiedIn.set(session.id, { scope, content: latest?.content ?? '', version: latest?.version, turnId });
    } catch (error) {
      this.options.logger.warn({ err: error, session: session.id, scope }, 'could not copy the channel memory into the sandbox; this turn will not save it');
    }
    return { path: MEMORY_PATH, content: latest?.content ?? '', ...(latest ? { version: latest.version } : {}) };
  }

  async copyOut(session: Session, exec: Exec): Promise<void> {
    const before = this.copiedIn.get(session.id);
    this.copiedIn.delete(session.id);
    if (!before) return;
    const where = session.place.kind === 'channel' ? { channel: session.place.channelId } : {};
    const base = { type: 'memory', action: 'update', actor: 'system', session: session.id, ...(before.turnId ? { turn: before.turnId } : {}), scope: before.scope, ...where } as const;
    try {
      const copy = await copyMemoryOut(exec);
      if (!copy.ok) {
        this.options.logger.warn({ session: session.id, scope: before.scope, reason: copy.reason }, 'channel memory not saved: the copy out of the sandbox was refused');
        await this.options.audit.append({ ...base, outcome: 'refused', reason: copy.reason.slice(0, 500) });
        await this.notice(session, before, refusedNotice(session, copy));
        return;
      }
      if (copy.content === before.content) return;
      await saveMemory(this.options.store, { scope: before.scope, content: copy.content, sessionId: session.id, ...(before.turnId ? { turnId: before.turnId } : {}), ...(before.version !== undefined ? { baseVersion: before.version } : {}) }, async (db, saved) => {
        const event: AuditEventInput = { ...base, outcome: 'ok', version: saved.version, bytes: saved.bytes, ...(before.version !== undefined ? { baseVersion: before.version } : {}), ...(copy.cut ? { cut: true } : {}) };
        await this.options.audit.appendIn(db, [event]);
      });
      if (copy.cut) await this.notice(session, before, cutNotice(session));
    } catch (error) {
      this.options.logger.warn({ err: error, session: session.id, scope: before.scope }, 'could not save the channel memory');
    }
  }

  private async notice(session: Session, before: CopiedIn, text: string): Promise<void> {
    await this.options.onNotice?.(session.id, text, before.turnId).catch((error: unknown) => this.options.logger.warn({ err: error, session: session.id }, 'could not post a memory notice'));
  }
}

function memoryName(session: Session): string {
  return session.place.kind === 'channel' ? "This channel's memory" : 'The memory of this DM';
}

export function cutNotice(session: Session): string {
  return `${memoryName(session)} (${MEMORY_PATH}) is over the 64 KiB cap: it was saved cut at a line boundary, ending with a line that says so. Keep it shorter to keep all of it.`;
}

export function refusedNotice(session: Session, copy: Extract<MemoryCopy, { ok: false }>): string {
  const why = copy.refused === 'link' ? 'it is a symbolic link, not the file itself' : copy.refused === 'special' ? 'it is not a regular file' : 'it could not be read';
  return `${memoryName(session)} was not saved: ${MEMORY_PATH} was refused (${why}). The last saved version stays, and the next turn starts from it.`;
}
