import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectLimitMechanism } from '../../src/sandbox/index.js';
import { fixture, hostProcessesMatching, sh } from './helpers.js';
import type { Fixture } from './helpers.js';

const MiB = 1024 * 1024;
const hasCgroups = detectLimitMechanism().kind !== 'rlimits';

let f: Fixture;
beforeAll(async () => {
  f = await fixture();
});
afterAll(async () => f?.close());

describe('limits, with the host\'s mechanism', () => {
  it.runIf(hasCgroups)('contains a memory hog and says so', async () => {
    const sandbox = await f.create({ memoryBytes: 96 * MiB });
    expect(sandbox.info.enforcement.memory).toMatch(/cgroup/);
    const result = await sh(f, sandbox, `python3 -c "b = b'x' * (400 * 1024 * 1024); print('ALLOCATED')"`);
    expect(result.stdout).not.toContain('ALLOCATED');
    expect(result.limit).toBe('memory');
    expect(result.stderr).toMatch(/tagbox: memory limit reached \(96 MiB\)/);
    // the sandbox survives its command's OOM
    expect((await sh(f, sandbox, 'echo alive')).stdout).toBe('alive\n');
  });

  it.runIf(hasCgroups)('contains a fork bomb and says so', async () => {
    const sandbox = await f.create({ processes: 64 });
    const result = await sh(f, sandbox, 'bomb() { bomb | bomb & }; bomb; sleep 1.5', { timeoutMs: 20_000 });
    expect(result.limit).toBe('processes');
    expect(result.stderr).toMatch(/tagbox: processes limit reached \(64 processes\)/);
    // the bomb died with its command; the sandbox still works
    expect((await sh(f, sandbox, 'echo alive')).stdout).toBe('alive\n');
    expect(hostProcessesMatching('bomb')).toEqual([]);
  });

  it('stops a command at the wall clock', async () => {
    const sandbox = await f.create({ wallMs: 60_000 });
    const started = Date.now();
    const result = await sh(f, sandbox, 'sleep 45.75', { timeoutMs: 700 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result.limit).toBe('wall clock');
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toContain('tagbox: wall clock limit reached (0.7 s)');
    expect(hostProcessesMatching('sleep 45.75')).toEqual([]);
  });

  it('caps output', async () => {
    const sandbox = await f.create({ outputBytes: 64 * 1024 });
    const result = await sh(f, sandbox, 'head -c 5000000 /dev/zero; sleep 30');
    expect(result.stdout.length).toBe(64 * 1024);
    expect(result.limit).toBe('output');
    expect(result.stderr).toContain('tagbox: output limit reached (64 KiB');
  });

  it('stops a CPU burner at its CPU time', async () => {
    const sandbox = await f.create({ cpuSeconds: 1 });
    const result = await sh(f, sandbox, 'while :; do :; done', { timeoutMs: 20_000 });
    expect(result.limit).toBe('cpu time');
    expect(result.exitCode).toBe(128 + 24);
    expect(result.stderr).toContain('tagbox: cpu time limit reached (1 s of CPU)');
  });

  it('caps the workspace disk', async () => {
    const sandbox = await f.create({ diskBytes: 2 * MiB });
    const result = await sh(f, sandbox, 'head -c 5000000 /dev/zero > /workspace/big');
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/No space left on device/);
    expect(result.limit).toBe('disk');
    expect(result.stderr).toContain('tagbox: disk limit reached (2 MiB)');
    const size = await sh(f, sandbox, 'df -k /workspace | tail -1');
    expect(Number(size.stdout.trim().split(/\s+/)[1])).toBeLessThanOrEqual(2048);
  });
});

describe('limits, with rlimits only', () => {
  it('reports rlimits and refuses a large allocation', async () => {
    const rf = await fixture({ limitMechanism: { kind: 'rlimits' } });
    try {
      const sandbox = await rf.create({ memoryBytes: 128 * MiB });
      expect(sandbox.info.enforcement.memory).toMatch(/RLIMIT_DATA/);
      expect(sandbox.info.enforcement.processes).toMatch(/RLIMIT_NPROC/);
      const result = await sh(rf, sandbox, `python3 -c "b = b'x' * (400 * 1024 * 1024); print('ALLOCATED')"; ulimit -d`);
      expect(result.stdout).not.toContain('ALLOCATED');
      expect(result.stderr).toContain('MemoryError');
      expect(result.stdout.trim()).toBe(String(128 * 1024));
    } finally {
      await rf.close();
    }
  });
});
