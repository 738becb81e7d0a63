/**
 * What an agent's message adds to the output that was already streamed.
 *
 * Progress is the live output and is printed as it arrives; the message that
 * ends it repeats it (the shell engine's reply is the command's output — its
 * tail when long — then `[exit code N]`). The rule: if the message, or the
 * message without its last line, ends with the end of what was streamed (from
 * the start of a line), that part is the repeat and is left out; the rest (the
 * `(output cut: ...)` note before it, the `[exit code N]` line after it) is
 * what the message adds. A message that does not repeat the stream — output
 * dropped by the rate limit, an answer in prose — is returned whole.
 */
export function addedByMessage(message: string, streamed: string): string {
  if (!streamed) return message;
  const shown = streamed.endsWith('\n') ? streamed : `${streamed}\n`;
  const ends: number[] = [];
  if (message.endsWith('\n')) ends.push(message.length);
  const lastLine = message.lastIndexOf('\n', message.endsWith('\n') ? message.length - 2 : message.length - 1);
  if (lastLine >= 0) ends.push(lastLine + 1);
  for (const end of ends) {
    const start = lineStartAtOrAfter(message, end - commonSuffix(message, end, shown), end);
    if (/\S/.test(message.slice(start, end))) return message.slice(0, start) + message.slice(end);
  }
  return message;
}

/** How many characters `text.slice(0, end)` and `other` have in common at their ends. */
function commonSuffix(text: string, end: number, other: string): number {
  let n = 0;
  while (n < end && n < other.length && text[end - 1 - n] === other[other.length - 1 - n]) n++;
  return n;
}

/** The first line start in text at or after `from` (a repeat starts a line), at most `end`. */
function lineStartAtOrAfter(text: string, from: number, end: number): number {
  if (from === 0 || text[from - 1] === '\n') return from;
  const newline = text.indexOf('\n', from);
  return newline < 0 || newline + 1 > end ? end : newline + 1;
}
