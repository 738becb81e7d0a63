import { describe, expect, it } from 'vitest';
import { exitCodeOf, textView } from '../../../src/cli/chat/turn-view.js';

describe('exitCodeOf', () => {
  it('0 for a done turn; the command exit code within 1..125; 1 for failed, cancelled, interrupted', () => {
    expect(exitCodeOf({ status: 'done' })).toBe(0);
    expect(exitCodeOf({ status: 'done', exitCode: 0 })).toBe(0);
    expect(exitCodeOf({ status: 'done', exitCode: 3 })).toBe(3);
    expect(exitCodeOf({ status: 'done', exitCode: 125 })).toBe(125);
    expect(exitCodeOf({ status: 'done', exitCode: 137 })).toBe(125);
    expect(exitCodeOf({ status: 'done', exitCode: -1 })).toBe(1);
    expect(exitCodeOf({ status: 'done', exitCode: 'x' })).toBe(1);
    for (const status of ['failed', 'cancelled', 'interrupted', 'anything-else']) expect(exitCodeOf({ status, exitCode: 0 })).toBe(1);
  });
});

describe('textView', () => {
  const run = (events: Array<{ type: string; data: Record<string, unknown> }>) => {
    let out = '';
    let err = '';
    const view = textView({ write: (t: string) => (out += t) }, { write: (t: string) => (err += t) });
    let code: number | undefined;
    events.forEach((e, i) => {
      const event = { seq: i + 1, ...e };
      if (e.type === 'done') code = view.done(event);
      else view.show(event);
    });
    return { out, err, code };
  };

  it('stdout: progress, then what the message adds; stderr: queue, notices, system and others, errors', () => {
    const r = run([
      { type: 'status', data: { state: 'queued', ahead: 2, text: 'queued: 2 ahead' } },
      { type: 'status', data: { state: 'running' } },
      { type: 'message', data: { author: { kind: 'member', name: 'Bob' }, text: 'me too' } },
      { type: 'progress', data: { text: 'partial' } },
      { type: 'notice', data: { text: 'blocked: evil.example', host: 'evil.example' } },
      { type: 'usage', data: { tokens: 5 } },
      { type: 'error', data: { message: 'oops' } },
      { type: 'message', data: { author: { kind: 'agent' }, text: 'partial\n[exit code 0]' } },
      { type: 'done', data: { status: 'done', exitCode: 0 } },
    ]);
    expect(r.out).toBe('partial\n[exit code 0]\n');
    expect(r.err).toBe('tagbox: queued: 2 ahead\ntagbox: running\ntagbox: Bob: me too\ntagbox: blocked: evil.example\ntagbox: error: oops\n');
    expect(r.code).toBe(0);
  });

  it("a turn that did not finish says so, unless the thread's system message already did; output ends its line", () => {
    const quiet = run([{ type: 'progress', data: { text: 'no newline' } }, { type: 'done', data: { status: 'interrupted' } }]);
    expect(quiet.out).toBe('no newline\n');
    expect(quiet.err).toBe('tagbox: the turn ended: interrupted\n');
    expect(quiet.code).toBe(1);
    const said = run([{ type: 'message', data: { author: { kind: 'system' }, text: 'Stopped by Owner.' } }, { type: 'done', data: { status: 'cancelled' } }]);
    expect(said.err).toBe('tagbox: Stopped by Owner.\n');
  });
});
