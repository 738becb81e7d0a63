import { createHash } from 'node:crypto';
import { PERSONAL_SECRET_PREFIX } from '../policy/bundle-schema.js';

/**
 * Personal connectors keep their secret in the vault under a name derived from
 * the member and the connector, never chosen by anyone: a member cannot point
 * a connector at an org secret (which would send the org's credential to a
 * website of their choosing), and the bundle schema refuses the whole
 * namespace, so no bundle can send a member's secret. A hash keeps the name
 * inside the vault's 63-character limit.
 */
export function personalSecretName(memberId: string, connector: string): string {
  return `${PERSONAL_SECRET_PREFIX}${createHash('sha256').update(memberId).digest('hex').slice(0, 16)}.${connector}`;
}

export function isPersonalSecretName(name: string): boolean {
  return name.startsWith(PERSONAL_SECRET_PREFIX);
}
