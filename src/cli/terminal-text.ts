/**
 * Invariant 9 at the terminal: what the server relays (a sandbox's output, an
 * agent's reply, names, error messages) is data, never instructions to the
 * terminal. Before any of it is written, escape sequences are removed whole
 * and every control character but newline and tab is dropped, so a sandbox
 * cannot move the cursor, retitle the window, or write the clipboard (OSC 52).
 * The server neutralises too; this does not rely on it.
 */

// String sequences (OSC, DCS, SOS, PM, APC; 7- and 8-bit introducers) up to their terminator.
// eslint-disable-next-line no-control-regex -- matching control sequences is the point
const STRING_SEQUENCE = /(?:\u001b[\]PX^_]|[\u0090\u0098\u009d\u009e\u009f])[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)/g;
// CSI (ESC [ or 8-bit CSI) with its parameters, intermediates and final byte.
// eslint-disable-next-line no-control-regex -- matching control sequences is the point
const CSI = /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]/g;
// Any other escape: ESC, intermediates, a final byte (ESC 7, ESC ( B, ESC c, ...).
// eslint-disable-next-line no-control-regex -- matching control sequences is the point
const OTHER_ESCAPE = /\u001b[ -/]*[0-~]/g;
// What is left of the C0 set (but tab and newline), DEL, C1, and the bidi controls that reorder what a reader sees.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Text safe to write to a terminal: printable characters, newlines and tabs only. */
export function forTerminal(text: string): string {
  return (
    text
      .replace(STRING_SEQUENCE, '')
      .replace(CSI, '')
      .replace(OTHER_ESCAPE, '')
      // A lone carriage return would let output overwrite the line before it: it becomes a newline.
      .replace(/\r\n?/g, '\n')
      .replace(CONTROL, '')
  );
}

// Characters JSON.stringify leaves raw that a terminal may still act on (C1, DEL) or that reorder or split lines.
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * One JSON line that is exact (a script reads back the very text) yet safe to
 * print: JSON.stringify escapes C0 controls, and this escapes the rest.
 */
export function jsonLineForTerminal(value: unknown): string {
  return JSON.stringify(value).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
