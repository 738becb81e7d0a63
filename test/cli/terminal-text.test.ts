import { describe, expect, it } from 'vitest';
import { forTerminal, jsonLineForTerminal } from '../../src/cli/terminal-text.js';

// eslint-disable-next-line no-control-regex -- the point of the test
const ACTIONABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('forTerminal', () => {
  it('removes whole escape sequences: title, clipboard, hyperlinks, DCS, CSI, charset and keypad escapes', () => {
    expect(forTerminal('\u001b]0;evil title\u0007ok')).toBe('ok');
    expect(forTerminal('\u001b]52;c;aGVsbG8=\u001b\\ok')).toBe('ok');
    expect(forTerminal('\u001b]8;;https://evil.example\u0007link\u001b]8;;\u0007')).toBe('link');
    expect(forTerminal('\u001bP+q544e\u001b\\ok')).toBe('ok');
    expect(forTerminal('\u001b[2J\u001b[1;1H\u001b[31mred\u001b[0m \u001b[?1049h')).toBe('red ');
    expect(forTerminal('\u001b(0x\u001b(B\u001b=\u001b7\u001bc')).toBe('x');
    // 8-bit forms.
    expect(forTerminal('\u009b31mred \u009d0;title\u009cok')).toBe('red ok');
  });

  it('keeps newlines and tabs, turns carriage returns into newlines, drops every other control and bidi override', () => {
    expect(forTerminal('a\tb\r\nc\rd\u0007\u0008\u007f\u0085e\u202eevil\u2069')).toBe('a\tb\nc\ndeevil');
    expect(forTerminal('plain text, ünïcödé, emoji 🙂')).toBe('plain text, ünïcödé, emoji 🙂');
  });

  it('leaves nothing a terminal acts on, whatever the input (every code point below 0x2070 and sequences cut short)', () => {
    let all = '';
    for (let c = 0; c < 0x2070; c++) all += String.fromCharCode(c);
    for (const text of [all, '\u001b]0;unterminated', '\u001b[', '\u001b', '\u009b', 'x\u001b]52;c;']) expect(forTerminal(text)).not.toMatch(ACTIONABLE);
  });
});

describe('jsonLineForTerminal', () => {
  it('is exact JSON (the text reads back) with no raw control character, C1 or line separator', () => {
    const value = { text: 'a\u001b[31m\u009b\u007f\u2028\u202e\nb' };
    const line = jsonLineForTerminal(value);
    expect(line).not.toMatch(ACTIONABLE);
    expect(line).not.toMatch(/[\n\u2028]/);
    expect(JSON.parse(line)).toEqual(value);
  });
});
