import { CA_BUNDLE_PATH, SANDBOX_HOSTNAME, SANDBOX_USER } from './etc-files.js';
import type { SandboxLimits } from './limits.js';
import { NATIVE_BUILD_DIR } from './native.js';

/** Fixed paths inside the sandbox. */
export const INSIDE = {
  workspace: '/workspace',
  run: '/run/tagbox',
  proxySocket: '/run/tagbox/proxy.sock',
  /** native/build/ of the checkout, read-only: the relay (tagbox-relay) runs from it. */
  native: '/run/tagbox/native',
  ctl: '/run/tagbox/ctl',
  state: '/run/tagbox/state',
  agent: '/run/tagbox/ctl/agent.sh',
} as const;

export const RELAY_URL = 'http://127.0.0.1:3128';

export interface OuterArgsInput {
  systemBinds: string[];
  etcDir: string;
  /** Host-wide copy of /etc/alternatives (symlinks only), when the host has one. */
  alternativesDir: string | undefined;
  ctlDir: string;
  proxySocket: string;
  limits: SandboxLimits;
  /** Per-process rlimits the agent applies to each command (0: none). */
  dataKiB: number;
  nproc: number;
  path: string;
}

/**
 * The long-lived sandbox: every namespace new, no capabilities, a read-only
 * root, and only the binds listed here. The options go to bwrap through
 * `--args FD` so that no host path shows up in the sandbox's /proc/1/cmdline;
 * bwrap takes the command itself from its real command line.
 */
export function outerArgs(input: OuterArgsInput): { options: string[]; command: string[] } {
  const { limits } = input;
  const { uid, gid, home } = SANDBOX_USER;
  const options = [
    '--unshare-user', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup',
    '--uid', String(uid), '--gid', String(gid), '--hostname', SANDBOX_HOSTNAME,
    '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
    ...input.systemBinds,
    '--ro-bind', input.etcDir, '/etc',
    ...(input.alternativesDir ? ['--ro-bind', input.alternativesDir, '/etc/alternatives'] : []),
    '--proc', '/proc',
    '--dev', '/dev',
    '--size', String(limits.tmpBytes), '--tmpfs', '/dev/shm',
    '--remount-ro', '/dev',
    '--size', String(limits.tmpBytes), '--tmpfs', '/tmp',
    '--size', String(limits.tmpBytes), '--tmpfs', home,
    '--size', String(limits.diskBytes), '--tmpfs', INSIDE.workspace,
    '--ro-bind', input.proxySocket, INSIDE.proxySocket,
    '--ro-bind', input.ctlDir, INSIDE.ctl,
    '--ro-bind', NATIVE_BUILD_DIR, INSIDE.native,
    '--size', String(1024 * 1024), '--tmpfs', INSIDE.state,
    '--remount-ro', '/',
    '--chdir', INSIDE.workspace,
    '--clearenv', '--setenv', 'PATH', input.path, '--setenv', 'HOME', home,
  ];
  return { options, command: ['/bin/sh', INSIDE.agent, String(limits.cpuSeconds), String(input.dataKiB), String(input.nproc)] };
}

/**
 * Options of the nested bwrap that runs one command inside the live sandbox:
 * a pid namespace of its own (its death takes every descendant with it), no
 * further user namespaces, and /run/tagbox (agent, FIFOs, proxy socket) hidden.
 */
export function execOptions(cwd: string, env: Record<string, string>): string[] {
  const { uid, gid } = SANDBOX_USER;
  const args = [
    '--unshare-user', '--disable-userns', '--uid', String(uid), '--gid', String(gid),
    '--unshare-pid', '--die-with-parent', '--cap-drop', 'ALL',
    // dev-bind: a plain bind would make the outer /dev's null, zero, tty... unusable (nodev).
    '--dev-bind', '/', '/',
    '--tmpfs', INSIDE.run, '--remount-ro', INSIDE.run,
    '--chdir', cwd,
    '--clearenv',
  ];
  for (const [key, value] of Object.entries(env)) args.push('--setenv', key, value);
  return args;
}

/**
 * The command's argv as a line the agent sources (`. FILE`): `set -- 'a' 'b'`.
 * Single quotes keep every byte but NUL literal, and NUL is refused earlier.
 */
export function argvScript(argv: string[]): string {
  return `set -- ${argv.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' ')}\n`;
}

/** The environment every command starts from: nothing of the host's, the proxy and the CA bundle. */
export function baseEnv(path: string): Record<string, string> {
  const { name, home } = SANDBOX_USER;
  const env: Record<string, string> = {
    PATH: path,
    HOME: home,
    USER: name,
    LOGNAME: name,
    SHELL: '/bin/sh',
    LANG: 'C.UTF-8',
    TMPDIR: '/tmp',
    NO_PROXY: 'localhost,127.0.0.1',
    no_proxy: 'localhost,127.0.0.1',
  };
  for (const key of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) {
    env[key] = RELAY_URL;
    env[key.toLowerCase()] = RELAY_URL;
  }
  for (const key of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']) {
    env[key] = CA_BUNDLE_PATH;
  }
  return env;
}

export function sandboxPath(nodeBin: string | undefined): string {
  return [...(nodeBin ? [nodeBin] : []), '/usr/local/bin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/sbin', '/sbin'].join(':');
}

/** bwrap reads `--args` as NUL-separated strings, so no argument may hold a NUL. */
export function encodeArgs(args: string[]): Buffer {
  return Buffer.from(args.map((arg) => `${arg}\0`).join(''), 'utf8');
}
