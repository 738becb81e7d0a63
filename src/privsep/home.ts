import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { loadSigningKey } from '../audit/signing-key.js';
import { homePaths } from '../home.js';
import type { PrivsepPlan } from './plan.js';

/**
 * Gives each file of TAGBOX_HOME to the process that needs it, and no more
 * (issue 9, item 2). Run by the root launcher before it starts the children;
 * idempotent, so files a root CLI verb made meanwhile are handed back too.
 *
 *   TAGBOX_HOME    root:tagbox 1770   both children make files in it (SQLite's -wal and -shm);
 *                                      sticky: neither can rename or remove what is not its own
 *   tagbox.yaml    root:tagbox 0640   both read it, neither changes it
 *   tagbox.db*     tagbox:tagbox 0660 the control store: the server, and the proxy's audit events
 *   vault/         tagbox-proxy 0700  the vault's database and the master key: the proxy only
 *   ca/            tagbox-proxy 0700  the deployment CA's key (the server asks the proxy for the certificate)
 *   run/           root:tagbox 3770   both children's sockets; the control socket is 0660 and checks its peer
 *   sandboxes/     tagbox 0700        the server's sandboxes
 *   audit-signing.key root:tagbox 0640 signs audit checkpoints: both children append to the log
 *   audit/         tagbox:tagbox 2770 the SIEM export (the server) and the external checkpoint (both)
 */
export function prepareHome(plan: Extract<PrivsepPlan, { mode: 'separated' }>, files: { masterKeyFile?: string; auditKeyFile: string }): void {
  const { masterKeyFile } = files;
  const { server, proxy, gid, home } = plan;
  const own = (path: string, uid: number, g: number, mode: number) => {
    if (!existsSync(path)) return;
    chownSync(path, uid, g);
    chmodSync(path, mode);
  };
  moveVaultIn(home, proxy.uid);
  const paths = homePaths(home);
  own(home, 0, gid, 0o1770);
  own(paths.config, 0, gid, 0o640);
  // An empty file is a new SQLite database: made here with its mode, so that SQLite gives its -wal
  // and -shm the same (group-writable: the proxy appends audit events) whatever the umask.
  if (!existsSync(paths.database)) closeSync(openSync(paths.database, 'wx', 0o660));
  for (const suffix of ['', '-wal', '-shm', '-journal']) own(`${paths.database}${suffix}`, server.uid, gid, 0o660);

  mkdirSync(paths.vaultDir, { recursive: true, mode: 0o700 });
  ownTree(paths.vaultDir, proxy.uid, proxy.gid, 0o700, 0o600);
  if (masterKeyFile) own(masterKeyFile, proxy.uid, proxy.gid, 0o600);
  mkdirSync(paths.caDir, { recursive: true, mode: 0o700 });
  ownTree(paths.caDir, proxy.uid, proxy.gid, 0o700, 0o600);

  mkdirSync(paths.sockets, { recursive: true });
  own(paths.sockets, 0, gid, 0o3770);
  mkdirSync(paths.sandboxes, { recursive: true });
  ownTree(paths.sandboxes, server.uid, server.gid, undefined, undefined);
  own(paths.sandboxes, server.uid, server.gid, 0o700);
  // Both children append to the audit log and sign its checkpoints: the key is root's, read by their group
  // (unless TAGBOX_AUDIT_SIGNING_KEY gives it); both write the external checkpoint in audit/.
  if (!process.env.TAGBOX_AUDIT_SIGNING_KEY) loadSigningKey({ file: files.auditKeyFile, create: true });
  own(files.auditKeyFile, 0, gid, 0o640);
  const audit = join(home, 'audit');
  mkdirSync(audit, { recursive: true });
  ownTree(audit, server.uid, gid, 0o2770, 0o660);
}

/**
 * A home made before vault/ existed keeps vault.db and master.key at its top,
 * where the server could reach them: move them into vault/. Only files that are
 * root's (made by root CLI verbs) or already the proxy's are moved — never one
 * the server's user could have planted there.
 */
function moveVaultIn(home: string, proxyUid: number): void {
  const vaultDir = join(home, 'vault');
  for (const name of ['vault.db', 'vault.db-wal', 'vault.db-shm', 'vault.db-journal', 'master.key']) {
    const legacy = join(home, name);
    if (!existsSync(legacy) || existsSync(join(vaultDir, name))) continue;
    const owner = lstatSync(legacy).uid;
    if (owner !== 0 && owner !== proxyUid) continue;
    mkdirSync(vaultDir, { recursive: true, mode: 0o700 });
    renameSync(legacy, join(vaultDir, name));
  }
}

/** chown -R without following links; modes for directories and files when given. */
function ownTree(path: string, uid: number, gid: number, dirMode: number | undefined, fileMode: number | undefined): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) return;
  chownSync(path, uid, gid);
  if (stat.isDirectory()) {
    if (dirMode !== undefined) chmodSync(path, dirMode);
    for (const entry of readdirSync(path)) ownTree(join(path, entry), uid, gid, dirMode, fileMode);
  } else if (fileMode !== undefined && stat.isFile()) {
    chmodSync(path, fileMode);
  }
}
