import { invalidInput } from '../errors.js';

/**
 * What a secret may be called and how big it may be. Names are shown in lists,
 * audit events and bundle files, so they are plain and short.
 */
export const SECRET_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const MAX_SECRET_BYTES = 64 * 1024;

export function validateSecretName(name: string): string {
  if (!SECRET_NAME_PATTERN.test(name)) {
    // The name is echoed: it is an identifier, never a value.
    throw invalidInput(
      `invalid secret name "${name.slice(0, 80)}": expected 1-63 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit`,
      'invalid_secret_name',
    );
  }
  return name;
}

/** Size limits only; never echoes the value. */
export function validateSecretSize(value: Buffer): Buffer {
  if (value.length === 0) throw invalidInput('the secret value is empty', 'invalid_secret_value');
  if (value.length > MAX_SECRET_BYTES) {
    throw invalidInput(`the secret value is ${value.length} bytes; the limit is ${MAX_SECRET_BYTES} bytes (64 KiB)`, 'invalid_secret_value');
  }
  return value;
}

/**
 * Like `gh secret set`: exactly one trailing "\n" (as `echo` or a heredoc adds)
 * is not part of the value. A "\r\n" loses only its "\n" and is then refused
 * as a control character for static secrets.
 */
export function stripOneTrailingNewline(value: Buffer): Buffer {
  return value.length > 0 && value[value.length - 1] === 0x0a ? value.subarray(0, value.length - 1) : value;
}
