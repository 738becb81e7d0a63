import { describe, expect, it } from 'vitest';
import { addedByMessage } from '../../src/util/repeat.js';

describe('addedByMessage: what an agent message adds to the streamed output', () => {
  it("the shell engine's reply repeats the output: only the exit code line is left", () => {
    expect(addedByMessage('Linux box 6.1\n[exit code 0]', 'Linux box 6.1\n')).toBe('[exit code 0]');
    // Output without a final newline: the reply adds one.
    expect(addedByMessage('no newline\n[exit code 1]', 'no newline')).toBe('[exit code 1]');
    // Several chunks of progress, one reply.
    expect(addedByMessage('a\nb\nc\n[exit code 0]', 'a\nb\nc\n')).toBe('[exit code 0]');
  });

  it('a cut reply keeps the tail: its note and the exit code are what it adds, also when the cut fell mid-line', () => {
    const streamed = `${Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n')}\n`;
    expect(addedByMessage('(output cut: the last 16 B of 690 B shown)\nline 98\nline 99\n[exit code 0]', streamed)).toBe('(output cut: the last 16 B of 690 B shown)\n[exit code 0]');
    expect(addedByMessage('(output cut: the last 9 B of 690 B shown)\ne 98\nline 99\n[exit code 0]', streamed)).toBe('(output cut: the last 9 B of 690 B shown)\n[exit code 0]');
  });

  it('a message that ends with the stream itself adds nothing', () => {
    expect(addedByMessage('same\n', 'same\n')).toBe('');
  });

  it('a message that does not repeat the end of the stream is printed whole', () => {
    // Nothing streamed; an answer in prose; output the rate limit dropped (the stream ends with its note).
    expect(addedByMessage('(no output)\n[exit code 3]', '')).toBe('(no output)\n[exit code 3]');
    expect(addedByMessage('The tests pass.', 'running tests\n')).toBe('The tests pass.');
    expect(addedByMessage('x\ny\nz\n[exit code 0]', 'x\n(300 KiB of output not shown: over the progress rate limit)\n')).toBe('x\ny\nz\n[exit code 0]');
  });

  it('a shared blank line or a partial line is no repeat', () => {
    expect(addedByMessage('\n[exit code 0]', '\n')).toBe('\n[exit code 0]');
    expect(addedByMessage('abc\n[exit code 0]', 'xbc\n')).toBe('abc\n[exit code 0]');
  });
});
