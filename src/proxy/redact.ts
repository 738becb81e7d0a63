/**
 * Nothing derived from a query string (or fragment) is recorded: not in an
 * audit event, not in a reason, not in a log line. Query strings carry
 * tokens, signed-URL signatures and personal data. Reasons quote request
 * targets and headers through shownTarget(); the recorder and the proxy's log
 * calls pass everything through withoutQueries() as well, for text that came
 * from elsewhere (an HTTP client's error message that quotes a URL).
 */

/**
 * A request target, Host header or similar, fit to quote in a reason: cut at
 * the first `?` or `#`, non-printable bytes escaped, at most `max` characters.
 */
export function shownTarget(text: string, max = 100): string {
  const cut = text.search(/[?#]/);
  const head = cut === -1 ? text : text.slice(0, cut);
  const printable = head.replace(/[^\x21-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

/** Drops every `?…` and `#…` run (up to whitespace or a quote) from free text. */
export function withoutQueries(text: string): string {
  return text.includes('?') || text.includes('#') ? text.replace(/[?#][^\s"'<>]*/g, '') : text;
}

/** An error as the proxy logs it: type, code and message, with any query removed. */
export function loggable(error: unknown): { type: string; code?: string; message: string; stack?: string } {
  if (!(error instanceof Error)) return { type: typeof error, message: withoutQueries(String(error)) };
  const code = (error as { code?: unknown }).code;
  return {
    type: error.name,
    ...(typeof code === 'string' ? { code } : {}),
    message: withoutQueries(error.message),
    ...(error.stack ? { stack: withoutQueries(error.stack) } : {}),
  };
}
