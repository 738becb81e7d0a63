import type { AuditLog } from '../audit/log.js';
import type { ControlStore } from '../store/database.js';
import type { Sealer } from '../vault/sealer.js';
import type { AccessAdminPort } from './access-port.js';

/** What route plugins are given. The server holds a Sealer (public key) only, never an Opener. */
export interface ServerDeps {
  store: ControlStore;
  audit: AuditLog;
  access: AccessAdminPort;
  /** The vault's write-only face; throws (503) while the vault is not initialised yet. */
  sealer(): Promise<Sealer>;
}
