/**
 * The one error type of Tagbox. It carries the exit code of CONTRACT.md so that
 * the CLI can map any failure to the right status without guessing:
 *   1 — a failed operation; 2 — bad usage or invalid input.
 */
export type ExitCode = 1 | 2;

export class TagboxError extends Error {
  readonly exitCode: ExitCode;
  /** A short machine-readable code for APIs and logs, e.g. `invalid_config`. */
  readonly code: string;

  constructor(message: string, options: { exitCode?: ExitCode; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TagboxError';
    this.exitCode = options.exitCode ?? 1;
    this.code = options.code ?? (this.exitCode === 2 ? 'invalid_input' : 'failed');
  }
}

/** Bad usage or invalid input (exit 2). The message must name what was wrong and where. */
export function invalidInput(message: string, code = 'invalid_input'): TagboxError {
  return new TagboxError(message, { exitCode: 2, code });
}

/** A failed operation (exit 1). */
export function failure(message: string, code = 'failed', cause?: unknown): TagboxError {
  return new TagboxError(message, { exitCode: 1, code, cause });
}

export function isTagboxError(error: unknown): error is TagboxError {
  return error instanceof TagboxError;
}

/** A one-line description of any thrown value, for messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
