import { writeFileSync } from 'node:fs';
import type { Logger } from '../log.js';

/**
 * The local Owner's first-run token, left in TAGBOX_HOME (0600: the server's
 * user and root alone) so that `tagbox chat` on the server's own machine needs
 * no setup — the operator there already holds owner power (`tagbox token
 * create`, the database). `--token` / TAGBOX_TOKEN override it.
 */
export function writeOwnerToken(file: string, token: string, logger: Logger): void {
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    logger.warn({ err: error, file }, 'could not store the local Owner token; `tagbox chat` will need --token');
  }
}
