import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_policy_revisions.js';
import * as m0003 from './0003_api_tokens.js';
import * as m0004 from './0004_audit_checkpoints.js';
import * as m0005 from './0005_connection_plain_http.js';
import * as m0006 from './0006_sessions.js';
import * as m0007 from './0007_schedules.js';
import * as m0008 from './0008_usage.js';
import * as m0009 from './0009_plugins.js';
import * as m0010 from './0010_memory.js';
import * as m0011 from './0011_message_context.js';
import * as m0012 from './0012_web_auth.js';
import * as m0013 from './0013_slack.js';
import * as m0014 from './0014_github.js';

/**
 * One ordered list of migrations for both dialects. Later issues append
 * (never edit) entries: sessions, messages, schedules.
 */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_policy_revisions': m0002,
  '0003_api_tokens': m0003,
  '0004_audit_checkpoints': m0004,
  '0005_connection_plain_http': m0005,
  '0006_sessions': m0006,
  '0007_schedules': m0007,
  '0008_usage': m0008,
  '0009_plugins': m0009,
  '0010_memory': m0010,
  '0011_message_context': m0011,
  '0012_web_auth': m0012,
  '0013_slack': m0013,
  '0014_github': m0014,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
