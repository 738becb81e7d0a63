import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { fixture, sandboxProcesses, sh } from './helpers.js';
import type { Fixture } from './helpers.js';

/**
 * Attacks on the confinement itself (issue 9, item 1): the sandbox must never
 * be host root (nor, where the host allows it, Tagbox's own uid), host-global
 * /proc files must not open for writing, the seccomp profiles must refuse the
 * kernel's riskiest calls, and the host user's keyring must be out of reach.
 * Every attempt is made from inside a real bubblewrap sandbox.
 */

const CANARY = `tagbox-key-canary-${Math.random().toString(36).slice(2)}`;
let f: Fixture;
let box: Sandbox;
let probe: Buffer;
const work = mkdtempSync(join(tmpdir(), 'tagbox-confinement-'));

beforeAll(async () => {
  f = await fixture();
  box = await f.create();
  execFileSync('cc', ['-O0', '-o', join(work, 'probe'), join(import.meta.dirname, 'fixtures', 'syscall-probe.c')]);
  probe = readFileSync(join(work, 'probe'));
});

afterAll(async () => {
  await f.close();
  rmSync(work, { recursive: true, force: true });
});

function hostUids(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  return line.split(/\s+/).slice(1, 5).map(Number);
}

describe('the sandbox is never host root', () => {
  it('runs every process of the sandbox as a host uid that is neither 0 nor, with a uid of its own, Tagbox\'s', async () => {
    const running = sh(f, box, 'sleep 2 & sleep 2 & wait');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const pids = sandboxProcesses(box);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    const identity = (f.provider as { identity?: { mode: string; sandbox?: { uid: number } } }).identity!;
    for (const pid of pids) {
      let uids: number[];
      try {
        uids = hostUids(pid);
      } catch {
        continue; // exited meanwhile
      }
      for (const uid of uids) {
        expect(uid, `process ${pid} of the sandbox`).not.toBe(0);
        if (identity.mode === 'separate') {
          expect(uid, `process ${pid} of the sandbox`).toBe(identity.sandbox!.uid);
          expect(uid).not.toBe(process.getuid!());
        }
      }
    }
    expect((await running).exitCode).toBe(0);
  });

  it('cannot write host-global /proc files (core_pattern, sysrq, hostname), not even from a shell that asks for root', async () => {
    const before = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    const r = await sh(f, box, [
      'for file in /proc/sys/kernel/core_pattern /proc/sys/kernel/modprobe /proc/sys/vm/drop_caches /proc/sysrq-trigger /proc/sys/kernel/hostname; do',
      '  if (printf "|/tmp/pwn %%p" > "$file") 2>/dev/null; then echo "WROTE $file"; else echo "refused $file"; fi',
      '  [ -w "$file" ] && echo "WRITABLE $file"',
      'done',
      'id -u',
    ].join('\n'));
    expect(r.stdout).not.toMatch(/WROTE|WRITABLE/);
    expect(r.stdout.match(/refused/g)).toHaveLength(5);
    expect(r.stdout.trim().split('\n').pop()).toBe('1000');
    expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(before);
  });

  it('hides kernel-revealing proc files and shows a command only its own processes', async () => {
    const r = await sh(f, box, 'cat /proc/keys /proc/kcore /proc/timer_list 2>/dev/null | wc -c; ls /proc | grep -E "^[0-9]+$" | wc -l; cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "');
    const [bytes, count, cmdlines] = r.stdout.split('\n');
    expect(Number(bytes)).toBe(0);
    // The command's own pid namespace: bwrap's reaper, the shell, and the pipeline's processes only.
    expect(Number(count)).toBeLessThanOrEqual(8);
    expect(cmdlines).not.toMatch(/agent\.sh|tagbox-relay|socat/);
  });
});

describe('seccomp', () => {
  it('refuses the kernel\'s riskiest calls to commands, and still lets ordinary work run', async () => {
    const r = await sh(f, box, 'cat > /tmp/probe && chmod +x /tmp/probe && /tmp/probe && grep -E "^Seccomp" /proc/self/status', { stdin: probe });
    expect(r.exitCode, r.stderr).toBe(0);
    const results = Object.fromEntries(r.stdout.trim().split('\n').filter((l) => !l.startsWith('Seccomp')).map((l) => l.split(' ')));
    expect(results.getpid).toBe('OK');
    expect(results.fork).toBe('OK');
    for (const call of [
      'keyctl', 'add_key', 'request_key', 'ptrace', 'process_vm_readv', 'perf_event_open', 'bpf', 'userfaultfd', 'io_uring_setup',
      'kexec_load', 'init_module', 'open_by_handle_at', 'mount', 'umount2', 'pivot_root', 'unshare_user', 'unshare_ns', 'setns', 'clone_newuser',
    ]) {
      expect(results[call], call).toBe('EPERM');
    }
    expect(results.clone3).toBe('ENOSYS');
    // The sandbox's profile and the command's, stacked.
    expect(r.stdout).toMatch(/^Seccomp:\s+2$/m);
    expect(Number(/^Seccomp_filters:\s+(\d+)$/m.exec(r.stdout)?.[1])).toBeGreaterThanOrEqual(2);
  });

  it('refuses new user namespaces through the tools too (unshare, bwrap)', async () => {
    const r = await sh(f, box, 'unshare -Ur id 2>&1; echo "unshare=$?"; bwrap --ro-bind / / true 2>&1; echo "bwrap=$?"');
    expect(r.stdout).toMatch(/unshare=[1-9]/);
    expect(r.stdout).toMatch(/bwrap=[1-9]/);
  });
});

describe('the kernel keyring', () => {
  const keyctl = spawnSync('keyctl', ['--version']).status === 0;

  it.runIf(keyctl)('cannot read the Tagbox user\'s session or user keys, nor fill their quota', async () => {
    const session = execFileSync('keyctl', ['add', 'user', 'tagbox-canary-s', CANARY, '@s'], { encoding: 'utf8' }).trim();
    const user = execFileSync('keyctl', ['add', 'user', 'tagbox-canary-u', CANARY, '@u'], { encoding: 'utf8' }).trim();
    const quota = () => readFileSync('/proc/key-users', 'utf8');
    const before = quota();
    try {
      const r = await sh(f, box, [
        `keyctl print ${session}; keyctl print ${user}; keyctl print %user:tagbox-canary-s; keyctl show @s; keyctl show @u`,
        'for i in $(seq 1 50); do keyctl add user "fill$i" "$(head -c 1000 /dev/zero | tr "\\0" x)" @s; done',
        'cat /proc/keys',
      ].join('\n'));
      expect(r.stdout + r.stderr).not.toContain(CANARY);
      expect(r.stderr).toMatch(/Operation not permitted/);
      // Nothing the sandbox tried was charged to anyone on the host.
      const after = quota();
      expect(after.split('\n').length).toBe(before.split('\n').length);
    } finally {
      spawnSync('keyctl', ['unlink', session, '@s']);
      spawnSync('keyctl', ['unlink', user, '@u']);
    }
  });
});

describe('host configuration under /usr', () => {
  const file = '/usr/local/etc/tagbox-test-npmrc';
  const root = process.getuid!() === 0;

  it.runIf(root)('is not visible in the sandbox (/usr/local/etc)', async () => {
    writeFileSync(file, `//registry.npmjs.org/:_authToken=${CANARY}\n`);
    try {
      const r = await sh(f, box, `ls -la /usr/local/etc; cat ${file}; grep -r "${CANARY}" /usr/local 2>/dev/null | head -1`);
      expect(r.stdout).not.toContain(CANARY);
      expect(r.stdout).not.toContain('tagbox-test-npmrc');
    } finally {
      if (existsSync(file)) unlinkSync(file);
    }
  });
});

describe('single-user mode', () => {
  const root = process.getuid!() === 0;

  it.runIf(root)('is refused when Tagbox runs as root: the sandbox would be root', async () => {
    await expect(fixture({ identity: 'shared' })).rejects.toThrow(/refused when Tagbox runs as root/);
  });

  it.runIf(!root)('runs the sandbox as Tagbox\'s own uid (the weaker mode), still never root', async () => {
    const single = await fixture({ identity: 'shared' });
    try {
      const sandbox = await single.create();
      const running = sh(single, sandbox, 'sleep 1');
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const pid of sandboxProcesses(sandbox)) {
        try {
          expect(hostUids(pid)).toEqual([process.getuid!(), process.getuid!(), process.getuid!(), process.getuid!()]);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      }
      await running;
      const r = await sh(single, sandbox, '( : >> /proc/sys/kernel/core_pattern ) 2>/dev/null && echo WRITABLE; grep Seccomp_filters /proc/self/status');
      expect(r.stdout).not.toContain('WRITABLE');
      expect(r.stdout).toMatch(/Seccomp_filters:\s+2/);
    } finally {
      await single.close();
    }
  });
});
