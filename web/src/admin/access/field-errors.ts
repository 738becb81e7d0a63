import type { ApiError } from '../../api';

/**
 * Puts a server error on the field it names. The form lists the fields it
 * shows (`connections[0].allowedWebsites[1]`); the error goes to the one the
 * server's path equals or lies inside (`domains[0].ports[1]` → `domains[0].ports`),
 * the deepest such field. An error no field claims is shown for the form.
 */
export function placeError(error: ApiError | undefined, fields: string[]): { field?: string; message?: string } {
  if (!error) return {};
  const path = error.field;
  if (path) {
    const inside = (f: string) => path === f || path.startsWith(`${f}.`) || path.startsWith(`${f}[`);
    const best = fields.filter(inside).sort((a, b) => b.length - a.length)[0];
    if (best) return { field: best, message: messageOf(error.message) };
  }
  return { message: error.message };
}

/** `body.domains[0]: expected ...` → `expected ...`: the field already says where. */
export function messageOf(message: string): string {
  return message.replace(/^(?:body|query|params)\.[^:\s]+: /, '');
}
