import { existsSync } from 'node:fs';
import { CA_BUNDLE_PATH, SANDBOX_HOSTNAME, SANDBOX_USER } from './etc-files.js';
import type { SandboxIdentity } from './identity.js';
import type { SandboxLimits } from './limits.js';
import { mountArgs } from './mounts.js';
import type { ReadOnlyMount } from './types.js';
import { NATIVE_FILES } from './native.js';

/** Fixed paths inside the sandbox. */
export const INSIDE = {
  workspace: '/workspace',
  run: '/run/tagbox',
  proxySocket: '/run/tagbox/proxy.sock',
  /** native/build/, read-only: the relay (tagbox-relay) and the command seccomp profile. */
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
  /** native/build: the seccomp profiles and the relay. */
  nativeDir: string;
  limits: SandboxLimits;
  /** Per-process rlimits the agent applies to each command (0: none). */
  dataKiB: number;
  nproc: number;
  path: string;
  identity: SandboxIdentity;
  /** Descriptor of the outer seccomp profile (BPF), loaded by bwrap before the sandbox's first process runs. */
  seccompFd: number;
  /** `separate` identity: bwrap waits on it while the host writes the user namespace's maps. */
  usernsBlockFd?: number;
  /** Read-only binds under /opt/tagbox (checked by `mountArgs`). */
  mounts?: ReadOnlyMount[];
}

/**
 * The sandbox's first process when it has a uid of its own: bwrap's set-up ran
 * as uid 0 of the namespace (Tagbox's own uid on the host); this gives the
 * writable places to the agent, then drops to it for good — uid and gid 1000,
 * no supplementary groups, every capability gone from every set, and the
 * parent-death signal (which a change of credentials clears) armed again.
 */
const INIT_STEP =
  `chown ${SANDBOX_USER.uid}:${SANDBOX_USER.gid} ${INSIDE.workspace} /tmp ${SANDBOX_USER.home} /dev/shm ${INSIDE.state} || exit 125; ` +
  `exec setpriv --reuid=${SANDBOX_USER.uid} --regid=${SANDBOX_USER.gid} --clear-groups --inh-caps=-all --bounding-set=-all --pdeathsig=SIGKILL -- /bin/sh "$@"`;

const INIT_CAPS = ['CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP'];

/**
 * The long-lived sandbox: every namespace new, a seccomp filter, no
 * capabilities (but, with a uid of its own, the few the first process needs to
 * drop to the agent), a read-only root, and only the binds listed here. The
 * options go to bwrap through `--args FD` so that no host path shows up in the
 * sandbox's /proc/1/cmdline; bwrap takes the command itself from its real
 * command line.
 */
export function outerArgs(input: OuterArgsInput): { options: string[]; command: string[] } {
  const { limits, identity } = input;
  const { uid, gid, home } = SANDBOX_USER;
  const who =
    identity.mode === 'separate'
      ? ['--userns-block-fd', String(input.usernsBlockFd), '--as-pid-1', '--cap-drop', 'ALL', ...INIT_CAPS.flatMap((cap) => ['--cap-add', cap])]
      : ['--uid', String(uid), '--gid', String(gid), '--cap-drop', 'ALL'];
  const options = [
    '--unshare-user', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup',
    '--hostname', SANDBOX_HOSTNAME, '--die-with-parent', '--new-session',
    ...who,
    '--seccomp', String(input.seccompFd),
    // bwrap makes missing parents 0700, owned by the namespace's uid 0: name them so they are 0755.
    '--dir', '/run', '--dir', INSIDE.run, '--dir', '/home',
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
    '--ro-bind', input.nativeDir, INSIDE.native,
    '--size', String(1024 * 1024), '--tmpfs', INSIDE.state,
    ...mountArgs(input.mounts ?? []),
    '--remount-ro', '/',
    '--chdir', INSIDE.workspace,
    '--clearenv', '--setenv', 'PATH', input.path, '--setenv', 'HOME', home,
  ];
  const agent = ['/bin/sh', INSIDE.agent, String(limits.cpuSeconds), String(input.dataKiB), String(input.nproc)];
  return { options, command: identity.mode === 'separate' ? ['/bin/sh', '-c', INIT_STEP, 'tagbox-init', ...agent.slice(1)] : agent };
}

/** Host-global or kernel-revealing files of a command's /proc: read-only, or hidden behind /dev/null. */
const PROC_READ_ONLY = ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus', '/proc/fs'];
// Only those this kernel has: bwrap cannot create a mount point inside procfs.
const PROC_HIDDEN = ['/proc/kcore', '/proc/keys', '/proc/key-users', '/proc/timer_list', '/proc/sched_debug', '/proc/latency_stats', '/proc/kallsyms', '/proc/kmsg']
  .filter((path) => existsSync(path));

/** The descriptor on which the agent hands each nested bwrap the command seccomp profile. */
export const COMMAND_SECCOMP_FD = 9;
export const COMMAND_SECCOMP_PATH = `${INSIDE.native}/${NATIVE_FILES.commandSeccomp}`;

/**
 * Options of the nested bwrap that runs one command inside the live sandbox:
 * a pid namespace of its own (its death takes every descendant with it) with a
 * fresh /proc that shows only it (so a command cannot reach the agent or
 * another command through /proc), host-global proc files read-only or hidden,
 * no further user namespaces, the command seccomp profile on top of the
 * sandbox's (no mounts, no namespaces), and /run/tagbox (agent, FIFOs, proxy
 * socket) hidden.
 */
export function execOptions(cwd: string, env: Record<string, string>): string[] {
  const { uid, gid } = SANDBOX_USER;
  const args = [
    '--unshare-user', '--disable-userns', '--uid', String(uid), '--gid', String(gid),
    '--unshare-pid', '--die-with-parent', '--cap-drop', 'ALL',
    // dev-bind: a plain bind would make the outer /dev's null, zero, tty... unusable (nodev).
    '--dev-bind', '/', '/',
    '--proc', '/proc',
    ...PROC_READ_ONLY.flatMap((path) => ['--ro-bind-try', path, path]),
    ...PROC_HIDDEN.flatMap((path) => ['--ro-bind', '/dev/null', path]),
    '--tmpfs', INSIDE.run, '--remount-ro', INSIDE.run,
    '--seccomp', String(COMMAND_SECCOMP_FD),
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
