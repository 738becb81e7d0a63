import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProxy, fixture, hostProcessesMatching, sh } from './helpers.js';
import type { Fixture } from './helpers.js';
import type { Sandbox } from '../../src/sandbox/index.js';

/**
 * Each test is an escape attempt that must fail. The sandbox runs real
 * bubblewrap; the host side sets up the bait (listeners, files, processes).
 */

const CANARY = `tagbox-canary-${Math.random().toString(36).slice(2)}${Date.now()}`;
let f: Fixture;
let a: Sandbox;
let b: Sandbox;
const servers: Server[] = [];
let udp: UdpSocket;
let udpReceived = 0;
let tcpPort = 0;
let tcp6Port = 0;
let abstractName = '';
let hostSleeper: ChildProcess;

function listen(server: Server, ...args: unknown[]): Promise<void> {
  servers.push(server);
  return new Promise((resolve) => (server.listen as (...a: unknown[]) => void)(...args, resolve));
}

beforeAll(async () => {
  // The canary is in the host process env and in host files; bait for every read below.
  process.env.TAGBOX_TEST_CANARY = CANARY;
  f = await fixture();
  mkdirSync(f.home, { recursive: true });
  writeFileSync(join(f.home, 'vault.db'), `vault ${CANARY}\n`);
  writeFileSync(join(f.home, 'master.key'), `${CANARY}\n`);
  [a, b] = await Promise.all([f.create(), f.create()]);

  const tcp = createServer((socket) => socket.end('host-tcp-reached\n'));
  await listen(tcp, 0, '127.0.0.1');
  tcpPort = (tcp.address() as { port: number }).port;
  const tcp6 = createServer((socket) => socket.end('host-tcp6-reached\n'));
  await listen(tcp6, 0, '::1');
  tcp6Port = (tcp6.address() as { port: number }).port;
  abstractName = `tagbox-test-${Math.random().toString(36).slice(2)}`;
  await listen(createServer((socket) => socket.end('host-abstract-reached\n')), `\0${abstractName}`);
  mkdirSync(join(f.home, 'run'), { recursive: true });
  await listen(createServer((socket) => socket.end('host-path-socket-reached\n')), join(f.home, 'run', 'other-session.sock'));
  udp = createSocket('udp4');
  udp.on('message', () => udpReceived++);
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  hostSleeper = spawn('sleep', ['97.531'], { stdio: 'ignore' });
});

afterAll(async () => {
  hostSleeper?.kill('SIGKILL');
  udp?.close();
  for (const server of servers) server.close();
  delete process.env.TAGBOX_TEST_CANARY;
  await f?.close();
});

describe('filesystem', () => {
  it('cannot write outside /workspace, /tmp and its home', async () => {
    const result = await sh(f, a, `
      for d in / /usr /usr/bin /etc /bin /lib /run /run/tagbox /proc/sys/kernel /dev; do
        touch "$d/tagbox-escape" 2>/dev/null && echo "WROTE $d"
      done
      echo x >> /etc/passwd 2>/dev/null && echo "WROTE passwd"
      touch /workspace/ok /tmp/ok /home/agent/ok && echo writable-ok`);
    expect(result.stdout.trim()).toBe('writable-ok');
  });

  it('cannot see host files, home directories, TAGBOX_HOME or the vault', async () => {
    const result = await sh(f, a, `
      ls -A /root /var /srv /opt /mnt /boot 2>/dev/null
      [ "$(ls -A /home)" = agent ] || echo SAW-HOME-DIRS
      ls -A "${f.home}" 2>/dev/null && echo SAW-HOME
      cat "${f.home}/vault.db" 2>/dev/null && echo SAW-VAULT
      find / -xdev \\( -name vault.db -o -name master.key -o -name 'tagbox-sandbox-test-*' \\) 2>/dev/null
      ls /
      echo done`);
    expect(result.stdout).not.toContain('SAW-');
    expect(result.stdout).not.toContain('vault.db');
    const top = result.stdout.trim().split('\n');
    expect(top.at(-1)).toBe('done');
    expect(top.slice(0, -1).sort()).toEqual(['bin', 'dev', 'etc', 'home', 'lib', 'lib64', 'proc', 'run', 'sbin', 'tmp', 'usr', 'workspace'].filter((d) => top.includes(d)).sort());
    expect(top).not.toContain('root');
    expect(top).not.toContain('var');
  });

  it('sees only its own users, not the host /etc/passwd', async () => {
    const result = await sh(f, a, 'cat /etc/passwd; cat /etc/group; getent passwd root || echo no-root');
    const hostUsers = readFileSync('/etc/passwd', 'utf8').split('\n').map((line) => line.split(':')[0]).filter((name) => name && name !== 'nobody');
    const names = result.stdout.split('\n').filter((line) => line.includes(':x:')).map((line) => line.split(':')[0]);
    expect(names.filter((name) => hostUsers.includes(name))).toEqual([]);
    expect(result.stdout).toContain('no-root');
  });

  it('cannot see another sandbox\'s workspace or the control files', async () => {
    await sh(f, b, 'echo b-private > /workspace/b-secret-file');
    const result = await sh(f, a, 'find / -xdev -name "b-secret-file" 2>/dev/null; ls -A /run/tagbox; cat /workspace/b-secret-file 2>&1 || true');
    expect(result.stdout).not.toContain('b-private');
    expect(result.stdout).not.toMatch(/^\/.*b-secret-file$/m);
    // the agent's FIFOs and the proxy socket are hidden from commands
    expect(result.stdout).not.toContain('proxy.sock');
    expect(result.stdout).not.toContain('requests');
  });
});

describe('processes', () => {
  it('cannot see or signal host processes', async () => {
    const result = await sh(f, a, `
      cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c '97[.]531' || true
      kill -0 ${process.pid} 2>/dev/null && echo SIGNALLED-HOST
      kill -0 ${hostSleeper.pid} 2>/dev/null && echo SIGNALLED-SLEEPER
      ls /proc | grep -c '^[0-9]'`);
    const [matches, ...rest] = result.stdout.trim().split('\n');
    expect(matches).toBe('0');
    expect(result.stdout).not.toContain('SIGNALLED');
    expect(Number(rest.at(-1))).toBeLessThan(20);
  });

  it('cannot ptrace a host process', async () => {
    const result = await sh(f, a, `python3 -c "
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, ${hostSleeper.pid}, 0, 0)
print('ptrace', r, ctypes.get_errno())
"`);
    expect(result.stdout).toMatch(/ptrace -1 (3|1)\b/); // ESRCH or EPERM
  });

  it('cannot see another live sandbox\'s processes', async () => {
    const controller = new AbortController();
    const other = sh(f, b, 'sleep 63.125', { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await sh(f, a, 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " " | grep -c "63[.]125" || true');
    controller.abort();
    await other;
    expect(result.stdout.trim()).toBe('0');
  });

  it('leaves no survivors: background, setsid, nohup and double-forked processes die with the command', async () => {
    const result = await sh(f, a, `
      sleep 71.1 &
      setsid sleep 71.2 &
      nohup sleep 71.3 >/dev/null 2>&1 &
      (sh -c 'sleep 71.4 &' &)
      python3 -c "import os
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '71.5'])" &
      sleep 0.3; echo started`);
    expect(result.stdout).toContain('started');
    for (const tag of ['71.1', '71.2', '71.3', '71.4', '71.5']) expect(hostProcessesMatching(`sleep ${tag}`)).toEqual([]);
    const next = await sh(f, a, 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " " | grep -c "sleep 7[1]" || true');
    expect(next.stdout.trim()).toBe('0');
  });
});

describe('network', () => {
  it('reaches nothing but the proxy: no host loopback TCP, no IPv6, no external route', async () => {
    const hostIp = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address ?? '10.0.0.1';
    const result = await sh(f, a, `
      curl -sS -m 3 --noproxy '*' http://127.0.0.1:${tcpPort}/ 2>/dev/null && echo REACHED-TCP
      curl -sS -m 3 --noproxy '*' -g 'http://[::1]:${tcp6Port}/' 2>/dev/null && echo REACHED-TCP6
      curl -sS -m 3 --noproxy '*' http://${hostIp}:${tcpPort}/ 2>/dev/null && echo REACHED-HOST-IP
      curl -sS -m 3 --noproxy '*' http://1.1.1.1/ 2>/dev/null && echo REACHED-INTERNET
      curl -sS -m 3 --noproxy '*' -g 'http://[2606:4700:4700::1111]/' 2>/dev/null && echo REACHED-INTERNET6
      socat -T2 - TCP:127.0.0.1:${tcpPort} </dev/null 2>/dev/null && echo REACHED-SOCAT
      echo done`);
    expect(result.stdout.trim()).toBe('done');
  });

  it('cannot send UDP to the host or resolve names', async () => {
    const result = await sh(f, a, `python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'x', ('127.0.0.1', ${(udp.address() as { port: number }).port}))
for target in [('8.8.8.8', 53), ('10.0.0.1', 53)]:
    try:
        s.sendto(b'x', target); print('SENT', target)
    except OSError as e:
        print('unreachable', e.errno)
for name in ['example.com', 'localhost.localdomain.example']:
    try:
        print('RESOLVED', socket.getaddrinfo(name, 80))
    except socket.gaierror:
        print('no-dns')
"
getent hosts example.com || echo getent-failed`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(udpReceived).toBe(0);
    expect(result.stdout).not.toContain('SENT');
    expect(result.stdout).not.toContain('RESOLVED');
    expect(result.stdout).toContain('getent-failed');
  });

  it('cannot connect to host Unix sockets, path or abstract', async () => {
    const result = await sh(f, a, `python3 -c "
import socket
for address in ['\\0${abstractName}', '${join(f.home, 'run', 'other-session.sock')}', '${f.proxySocket}']:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(address); print('CONNECTED', repr(address))
    except OSError as e:
        print('refused', e.errno)
"
socat -T2 - ABSTRACT-CONNECT:${abstractName} </dev/null 2>/dev/null && echo CONNECTED-SOCAT
echo done`);
    expect(result.stdout).not.toContain('CONNECTED');
    expect(result.stdout).toContain('done');
  });

  it('reaches only its own proxy socket, never another session\'s', async () => {
    const otherSocket = join(f.home, 'run', 'other-proxy.sock');
    const other = await startFakeProxy(otherSocket, 'OTHER-SESSION-PROXY');
    servers.push(other as unknown as Server);
    const result = await sh(f, a, 'curl -sS http://example.com/; ls /run/tagbox 2>&1');
    expect(result.stdout).toContain(f.marker);
    expect(result.stdout).not.toContain('OTHER-SESSION-PROXY');
  });
});

describe('privileges', () => {
  it('has no capabilities, no_new_privs, and nosuid mounts', async () => {
    const result = await sh(f, a, 'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)" /proc/self/status; grep " /usr " /proc/self/mountinfo');
    for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(result.stdout).toMatch(new RegExp(`${cap}:\\s+0000000000000000`));
    expect(result.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(result.stdout).toMatch(/ \/usr .*nosuid/);
  });

  it('cannot gain privileges through setuid binaries, mount, unshare or setuid()', async () => {
    const result = await sh(f, a, `
      for bin in /usr/bin/su /usr/bin/sudo /usr/bin/passwd /usr/bin/mount; do
        [ -x "$bin" ] && "$bin" --help </dev/null >/dev/null 2>&1; true
      done
      su -c 'id -u' root </dev/null 2>/dev/null && echo GOT-ROOT
      mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED
      unshare -U true 2>/dev/null && echo UNSHARED-USER
      unshare -r id -u 2>/dev/null && echo UNSHARED-ROOT
      unshare -n true 2>/dev/null && echo UNSHARED-NET
      python3 -c "import os; os.setuid(0)" 2>/dev/null && echo SETUID
      echo done`);
    expect(result.stdout.trim()).toBe('done');
  });
});

describe('secrets', () => {
  it('the canary from the host env and host files is nowhere the sandbox can read', async () => {
    const prefix = CANARY.slice(0, 13);
    const dump = await sh(f, a, 'env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" "\\n"; ls -la /proc/[0-9]*/fd 2>/dev/null');
    expect(dump.stdout).not.toContain(prefix);
    expect(dump.stdout).not.toContain(CANARY);
    // Every file it can read (but /usr, /proc and /sys, which hold nothing of this host's data); the
    // search pattern is split so that this script's own command line cannot match it.
    const search = await sh(f, a, `p1=${prefix.slice(0, 6)}; p2=${prefix.slice(6)}
      grep -r -s -l -e "$p1$p2" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr 2>/dev/null
      for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline /proc/[0-9]*/status; do grep -s -l -e "$p1$p2" "$f"; done
      echo done`);
    expect(search.stdout.trim()).toBe('done');
  });
});
