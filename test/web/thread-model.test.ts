import { describe, expect, it } from 'vitest';
import { apply, emptyThread, items, liveStatus, withMessages, type ThreadEvent, type ThreadState } from '../../web/src/chat/thread-model.js';

/** The chat page's thread reducer: what a replay, a reconnect or a joined message must not get wrong. */
const member = (id: string, turn: string, text = id) => ({ id, author: { kind: 'member', id: 'ada', name: 'Ada' }, text, ts: '2025-01-01T00:00:00.000Z', turn });
const agent = (id: string, turn: string, text = id) => ({ id, author: { kind: 'agent' }, text, ts: '2025-01-01T00:00:01.000Z', turn });
const ev = (seq: number, type: string, data: Record<string, unknown>): ThreadEvent => ({ seq, type, data });
const run = (events: ThreadEvent[], start: ThreadState = emptyThread()) => events.reduce(apply, start);

const oneTurn = [
  ev(1, 'message', member('m1', 't1', 'echo hi')),
  ev(2, 'status', { state: 'running', turn: 't1' }),
  ev(3, 'progress', { text: 'hi\n', turn: 't1' }),
  ev(4, 'message', agent('a1', 't1', 'hi\n[exit code 0]')),
  ev(5, 'done', { turn: 't1', status: 'done', exitCode: 0 }),
];

describe('the chat thread model', () => {
  it('applies each event id once: a replay of the whole log (a reconnect without Last-Event-ID) changes nothing', () => {
    const once = run(oneTurn);
    const twice = run([...oneTurn, ...oneTurn, oneTurn[2]!]);
    expect(twice).toEqual(once);
    expect(once.turns.t1).toMatchObject({ state: 'done', steps: 1, progress: 'hi\n' });
    expect(items(once).map((i) => (i.kind === 'message' ? i.message.id : `turn:${i.turn.id}:${i.answers.map((a) => a.id).join(',')}`))).toEqual(['m1', 'turn:t1:a1']);
  });

  it("shows the thread's own messages first, then files them under their turns once the log names them (no duplicates)", () => {
    // GET /threads/{id} gives messages without their turns.
    const loaded = withMessages(emptyThread(), [{ ...member('m1', ''), turn: undefined }, { ...agent('a1', ''), turn: undefined }] as never);
    expect(items(loaded).map((i) => i.kind)).toEqual(['message', 'message']);
    const live = run(oneTurn, loaded);
    expect(live.order).toEqual(['m1', 'a1']);
    expect(items(live).map((i) => i.kind)).toEqual(['message', 'turn']);
  });

  it('a message that joined the running turn is marked, and its answer is that turn’s', () => {
    const state = run([
      ev(1, 'message', member('m1', 't1', 'first')),
      ev(2, 'status', { state: 'running', turn: 't1' }),
      ev(3, 'message', member('m2', 't2', 'second')),
      ev(4, 'done', { turn: 't2', status: 'joined', into: 't1' }),
      ev(5, 'message', agent('a1', 't1', 'both')),
    ]);
    expect(liveStatus(state)).toEqual({ state: 'running' });
    const list = items(state);
    expect(list.map((i) => i.kind)).toEqual(['message', 'turn', 'message']);
    expect(list[2]).toMatchObject({ kind: 'message', joined: true });
    expect(list[1]).toMatchObject({ kind: 'turn', answers: [expect.objectContaining({ id: 'a1' })] });
  });

  it("a pull request's notice links to it, and only over http(s)", () => {
    const state = run([
      ev(1, 'message', member('m1', 't1')),
      ev(2, 'notice', { kind: 'pull-request', url: 'https://github.com/acme/widgets/pull/1', text: 'Opened pull request acme/widgets#1', turn: 't1' }),
      ev(3, 'notice', { kind: 'pull-request', url: 'javascript:alert(1)', text: 'Opened pull request acme/widgets#2', turn: 't1' }),
      ev(4, 'notice', { kind: 'blocked', url: 'https://evil.example/', host: 'x.example', text: 'Blocked', turn: 't1' }),
    ]);
    expect(state.turns.t1!.notices.map((n) => n.href)).toEqual(['https://github.com/acme/widgets/pull/1', undefined, undefined]);
  });

  it('queued with its position; notices, errors and a stop belong to their turn', () => {
    const queued = run([ev(1, 'message', member('m1', 't1')), ev(2, 'status', { state: 'queued', turn: 't1', ahead: 2 })]);
    expect(liveStatus(queued)).toEqual({ state: 'queued', ahead: 2 });
    const stopped = run(
      [
        ev(3, 'status', { state: 'running', turn: 't1' }),
        ev(4, 'notice', { kind: 'blocked', host: 'x.example', port: 443, text: 'Blocked a request to x.example', turn: 't1' }),
        ev(5, 'error', { message: 'boom', turn: 't1' }),
        ev(6, 'message', { id: 's1', author: { kind: 'system' }, text: 'Stopped by Ada.', ts: '2025-01-01T00:00:02.000Z', turn: 't1' }),
        ev(7, 'done', { turn: 't1', status: 'cancelled' }),
        ev(8, 'usage', { inputTokens: 3, turn: 't1' }),
        ev(9, 'something-newer', { turn: 't1' }),
      ],
      queued,
    );
    expect(liveStatus(stopped)).toEqual({ state: 'idle' });
    expect(stopped.cursor).toBe(9);
    const turn = items(stopped).find((i) => i.kind === 'turn');
    expect(turn).toMatchObject({ turn: { state: 'cancelled', errors: ['boom'], notices: [expect.objectContaining({ host: 'x.example' })], usage: { inputTokens: 3 } }, notes: [expect.objectContaining({ text: 'Stopped by Ada.' })] });
  });
});
