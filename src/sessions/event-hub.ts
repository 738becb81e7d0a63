import { EventEmitter } from 'node:events';

/**
 * In-process wake-ups: "session X has new events". The event log in the store
 * is the truth; this only spares readers (SSE streams) a poll when the writer
 * is the same process. Readers also poll, slowly, for writers elsewhere.
 */
export class EventHub {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  notify(sessionId: string): void {
    this.emitter.emit(sessionId);
  }

  subscribe(sessionId: string, fn: () => void): () => void {
    this.emitter.on(sessionId, fn);
    return () => this.emitter.off(sessionId, fn);
  }
}
