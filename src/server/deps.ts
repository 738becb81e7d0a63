import type { AuditLog } from '../audit/log.js';
import type { ControlStore } from '../store/database.js';
import type { SecretStore } from '../vault/secret-store.js';
import type { AccessAdminPort } from './access-port.js';

/** What route plugins are given. The server holds the vault's write-only face only, never an Opener. */
export interface ServerDeps {
  store: ControlStore;
  audit: AuditLog;
  access: AccessAdminPort;
  /** The vault's write-only face (under `tagbox up`, the proxy's); throws (503) while the vault is not reachable. */
  sealer(): Promise<SecretStore>;
  /** agent.modelSecret: the vault name of the org's model key (the model connection of every session's policy). */
  modelSecret?: string;
  /** slack.signingSecret is configured (the Events API can be used); the value stays with the Slack surface. */
  slackSigningSecret?: boolean;
}
