import { EventEmitter } from 'node:events';

/**
 * In-process wake-ups: "session X has new events". The event log in the store
 * is the truth; this only spares readers (SSE streams) a poll when the writer
 * is the same process. Readers also poll, slowly, for writers elsewhere.
 */
export class EventHub {
  private readonly emitter = new EventEmitter();
  private readonly all = new Set<(sessionId: string) => void>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  notify(sessionId: string): void {
    this.emitter.emit(sessionId);
    for (const fn of this.all) fn(sessionId);
  }

  subscribe(sessionId: string, fn: () => void): () => void {
    this.emitter.on(sessionId, fn);
    return () => this.emitter.off(sessionId, fn);
  }

  /** Every session's wake-ups (a surface that follows many threads, e.g. Slack's replies). */
  subscribeAll(fn: (sessionId: string) => void): () => void {
    // Its own entry each time, so one function subscribed twice is unsubscribed once per call.
    const entry = (sessionId: string) => fn(sessionId);
    this.all.add(entry);
    return () => this.all.delete(entry);
  }
}
