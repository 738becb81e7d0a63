import { createHash } from 'node:crypto';

/**
 * Personal connectors keep their secret in the vault under a name derived from
 * the member, so that a member can never point a connector at an org secret
 * (which would send the org's credential to a website of their choosing).
 * A hash keeps the name inside the vault's 63-character limit.
 */
export const PERSONAL_PREFIX = 'personal.';

export function personalSecretName(memberId: string, connector: string): string {
  return `${PERSONAL_PREFIX}${createHash('sha256').update(memberId).digest('hex').slice(0, 16)}.${connector}`;
}

export function isPersonalSecretName(name: string): boolean {
  return name.startsWith(PERSONAL_PREFIX);
}
