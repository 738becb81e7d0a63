import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { dirname, sep } from 'node:path';

const HOST_CONFIG_UNDER_USR = ['/usr/local/etc', '/usr/etc'];

/**
 * The read-only system view: /usr, the top-level /bin /sbin /lib* entries as
 * the host has them (symlinks on merged-/usr hosts, binds otherwise), and the
 * install prefix of Node when it lives outside /usr. Never `/` whole, never
 * /root, /home, /run, /var or TAGBOX_HOME, and not the host configuration
 * kept under /usr (/usr/local/etc, /usr/etc).
 */
export function systemBindArgs(forbidden: string[]): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  // Host configuration that lives under /usr (the global npmrc of a Node in
  // /usr/local, ...) is not the sandbox's business: an empty read-only dir instead.
  for (const dir of HOST_CONFIG_UNDER_USR) {
    if (lstatOrUndefined(dir)?.isDirectory()) args.push('--tmpfs', dir, '--remount-ro', dir);
  }
  for (const top of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    const stat = lstatOrUndefined(top);
    if (!stat) continue;
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else if (stat.isDirectory()) args.push('--ro-bind', top, top);
  }
  const prefix = nodePrefix(forbidden);
  if (prefix) {
    // Parents bwrap would make itself are 0700 and not the sandbox user's: make them 0755.
    const parts = prefix.split(sep).filter(Boolean);
    for (let i = 1; i < parts.length; i++) args.push('--dir', `/${parts.slice(0, i).join('/')}`);
    args.push('--ro-bind', prefix, prefix);
  }
  return args;
}

/** `bin` of Node's prefix when it had to be bound (it then goes first on PATH). */
export function nodeBinDir(forbidden: string[]): string | undefined {
  const prefix = nodePrefix(forbidden);
  return prefix ? `${prefix}/bin` : undefined;
}

/**
 * Node installed by nvm, volta or a tarball lives in e.g. /root/.nvm/versions/node/v20:
 * that directory (and nothing else of its parents) is bound. Refused when the prefix
 * is shallow or would contain something the sandbox must not see.
 */
function nodePrefix(forbidden: string[]): string | undefined {
  let binary: string;
  try {
    binary = realpathSync(process.execPath);
  } catch {
    return undefined;
  }
  const prefix = dirname(dirname(binary));
  if (prefix === '/usr' || prefix.startsWith('/usr/')) return undefined;
  const depth = prefix.split(sep).filter(Boolean).length;
  if (depth < 2 || ['/root', '/home', '/run', '/var', '/etc', '/tmp'].includes(prefix)) return undefined;
  if (forbidden.some((path) => path === prefix || path.startsWith(`${prefix}/`))) return undefined;
  if (!statSync(prefix).isDirectory()) return undefined;
  return prefix;
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
