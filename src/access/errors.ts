import { TagboxError } from '../errors.js';

/** Something named does not exist: exit 2 (the input named it), code `not_found` (the API's 404). */
export function notFound(what: string): TagboxError {
  return new TagboxError(`${what} not found`, { exitCode: 2, code: 'not_found' });
}
