import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { REPO_ROOT, runTagbox, TAGBOX_BIN, type CliResult } from '../helpers/cli.js';
import { startUp, type RunningUp } from '../helpers/up.js';

// Anything a terminal could act on: C0 but newline and tab, DEL, C1 (including 8-bit CSI and OSC).
// eslint-disable-next-line no-control-regex -- the point of the test
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const THREAD_LINE = /^thread: ([0-9a-f-]{36})$/m;

/**
 * `tagbox chat` end to end: the real `tagbox up` (launcher, server, Agent
 * Proxy, bubblewrap sandboxes, shell engine), the real command as a child
 * process finding the local Owner's token in TAGBOX_HOME by itself.
 */
describe.each(BACKENDS)('tagbox chat against a real tagbox up (%s)', (name) => {
  let backend: TestBackend;
  let up: RunningUp;
  let ownerToken: string;
  const chat = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) =>
    runTagbox(['chat', '--url', up.url, ...args], { env: { TAGBOX_HOME: backend.home, ...options.env }, ...(options.input !== undefined ? { input: options.input } : {}), timeoutMs: 90_000 });
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${up.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ownerToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const threadOf = (r: CliResult) => {
    const id = THREAD_LINE.exec(r.stderr)?.[1];
    expect(id, r.stderr).toBeDefined();
    return id!;
  };

  beforeAll(async () => {
    backend = await createTestBackend(name);
    up = await startUp({
      ...backend.env,
      // Replies are cut at 256 bytes (the output's tail is kept) and progress is never rate-limited,
      // so the output-and-reply rule can be seen on a short output; every thread its own sandbox.
      TAGBOX_AGENT_MAX_REPLY_BYTES: '256',
      TAGBOX_AGENT_PROGRESS_BYTES_PER_SECOND: String(16 * 1024 * 1024),
      TAGBOX_AGENT_MAX_SANDBOXES_PER_ORG: '64',
    });
    ownerToken = readFileSync(join(backend.home, 'owner.token'), 'utf8').trim();
  }, 90_000);
  afterAll(async () => {
    await up?.stop();
    await backend?.cleanup();
  });

  it('runs a command in #general and prints its output once, with its exit code; exit 0', async () => {
    const r = await chat(['uname -a']);
    expect(r.stdout).toMatch(/^Linux \S+ .*\n\[exit code 0\]\n$/);
    expect(r.code).toBe(0);
    // stderr says only where to continue; the thread is in #general.
    expect(r.stderr).toMatch(/^thread: [0-9a-f-]{36}\n$/);
    const thread = await api('GET', `/api/v1/threads/${threadOf(r)}`);
    expect(thread.body.place).toMatchObject({ kind: 'channel', name: 'general' });
    expect((thread.body.messages as Array<{ author: { kind: string }; text: string }>).map((m) => [m.author.kind, m.text])).toEqual([
      ['member', 'uname -a'],
      ['agent', expect.stringMatching(/^Linux [^]*\[exit code 0\]$/)],
    ]);
  });

  it("passes the command's exit code through, capped to 1..125", async () => {
    const three = await chat(['exit 3']);
    expect(three.code).toBe(3);
    expect(three.stdout).toBe('(no output)\n[exit code 3]\n');
    const high = await chat(['exit 200']);
    expect(high.code).toBe(125);
    expect(high.stdout).toBe('(no output)\n[exit code 200]\n');
  });

  it('--thread continues the thread in the same sandbox; a new thread does not see its files', async () => {
    const first = await chat(['echo kept-across-messages > /workspace/note.txt && echo written']);
    expect(first.code).toBe(0);
    const thread = threadOf(first);
    const second = await chat(['--thread', thread, 'cat /workspace/note.txt']);
    expect(second.stdout).toBe('kept-across-messages\n[exit code 0]\n');
    expect(second.code).toBe(0);
    expect(threadOf(second)).toBe(thread);
    const elsewhere = await chat(['cat /workspace/note.txt']);
    expect(elsewhere.code).toBe(1);
    expect(threadOf(elsewhere)).not.toBe(thread);
    // One thread, both messages; the history of the first turn was not printed again by the second run.
    expect(second.stdout).not.toContain('written');
    const messages = (await api('GET', `/api/v1/threads/${thread}`)).body.messages as Array<{ author: { kind: string } }>;
    expect(messages.filter((m) => m.author.kind === 'member')).toHaveLength(2);
  });

  it('reads the message from stdin when there is no TEXT; empty stdin is an input error', async () => {
    const r = await chat([], { input: 'echo from-stdin | tr a-z A-Z\n' });
    expect(r.stdout).toBe('FROM-STDIN\n[exit code 0]\n');
    expect(r.code).toBe(0);
    const empty = await chat([], { input: '' });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('stdin: expected the message');
  });

  it('writes no escape sequence or control character a sandbox printed to the terminal', async () => {
    // Window title (OSC 0), clipboard (OSC 52), clear screen and cursor moves (CSI), bell,
    // a carriage return that would overwrite the line, 8-bit CSI.
    const hostile = String.raw`printf '\033]0;pwned-title\007\033]52;c;cHduZWQ=\007\033[2J\033[H\033[31mred\033[0m\rover\n\007bell \302\233 31m8bit\n\033P+q\033\\\n'`;
    const r = await chat([hostile]);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(CONTROL);
    expect(r.stdout).not.toContain('pwned-title');
    expect(r.stdout).not.toContain('cHduZWQ=');
    expect(r.stdout).toMatch(/^red\nover\nbell/);
    // --json too: the lines are JSON (our own message quotes the command; the sandbox's output is what was left).
    const json = await chat(['--json', hostile]);
    expect(json.code).toBe(0);
    expect(json.stdout + json.stderr).not.toMatch(CONTROL);
    const output = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; data: { text?: string; author?: { kind: string } } })
      .filter((e) => e.event === 'progress' || e.data.author?.kind === 'agent')
      .map((e) => e.data.text)
      .join('');
    expect(output).toContain('red');
    expect(output).not.toContain('pwned-title');
  });

  it('shows a long output once: what the cut reply adds is its note and the exit code', async () => {
    const r = await chat(['seq 1 200']);
    expect(r.code).toBe(0);
    const numbers = Array.from({ length: 200 }, (_, i) => `${i + 1}\n`).join('');
    expect(r.stdout).toMatch(new RegExp(`^${numbers}\\(output cut: the last \\d+ B of 692 B shown\\)\\n\\[exit code 0\\]\\n$`));
  });

  it('--json prints the turn as JSON lines: our message, its events, one done', async () => {
    const r = await chat(['--json', 'echo hi']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { id: number; event: string; data: Record<string, unknown> });
    expect(lines[0]).toMatchObject({ event: 'message', data: { text: 'echo hi', author: { kind: 'member' } } });
    const turn = lines[0]!.data.turn;
    expect(lines.every((l) => l.data.turn === turn)).toBe(true);
    expect(lines.map((l) => l.event)).toEqual(['message', 'status', 'progress', 'message', 'done']);
    expect(lines.at(-1)!.data).toMatchObject({ status: 'done', exitCode: 0 });
    expect(lines.map((l) => l.id)).toEqual([...lines.map((l) => l.id)].sort((a, b) => a - b));
  });

  it('--channel takes a name with or without # or an id; an unknown one lists the channels there are', async () => {
    const channels = (await fetch(`${up.url}/api/v1/channels`, { headers: { authorization: `Bearer ${ownerToken}` } }).then((r) => r.json())) as Array<{ id: string; name: string }>;
    const general = channels.find((c) => c.name === 'general')!;
    for (const ref of ['#general', 'general', general.id]) {
      const r = await chat(['--channel', ref, 'echo ok']);
      expect(r.stdout, ref).toBe('ok\n[exit code 0]\n');
    }
    const unknown = await chat(['--channel', 'no-such-channel', 'echo never']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--channel: no channel "no-such-channel" here');
    expect(unknown.stderr).toContain(`#general (${general.id})`);
    expect(unknown.stdout).toBe('');
  });

  it('--dm talks in your DM, where the agent acts as you; DMs turned off: the refusal and its reason, exit 1', async () => {
    const r = await chat(['--dm', 'echo in-my-dm']);
    expect(r.stdout).toBe('in-my-dm\n[exit code 0]\n');
    expect(r.code).toBe(0);
    const thread = await api('GET', `/api/v1/threads/${threadOf(r)}`);
    expect(thread.body.place).toMatchObject({ kind: 'dm' });
    expect(thread.body.session).toMatchObject({ identity: 'member' });
    // --thread alone finds the DM by itself.
    const again = await chat(['--thread', threadOf(r), 'echo still-dm']);
    expect(again.stdout).toBe('still-dm\n[exit code 0]\n');

    expect((await api('PATCH', '/api/v1/org', { dmsAllowed: false })).status).toBe(200);
    try {
      const refused = await chat(['--dm', 'echo never']);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toMatch(/^tagbox: refused \(dms-off\): An admin has turned off direct messages/m);
    } finally {
      await api('PATCH', '/api/v1/org', { dmsAllowed: true });
    }
  });

  it('posts a message once when the network cuts the answer to the post (the retry carries the same Idempotency-Key)', async () => {
    const relay = await cuttingRelay(up.port);
    try {
      const r = await runTagbox(['chat', '--url', `http://127.0.0.1:${relay.port}`, 'echo posted-once'], { env: { TAGBOX_HOME: backend.home }, timeoutMs: 90_000 });
      expect(relay.cut()).toBe(1);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('posted-once\n[exit code 0]\n');
      expect(r.stderr).toContain('the server already had this message (a retry)');
      const messages = (await api('GET', `/api/v1/threads/${threadOf(r)}`)).body.messages as Array<{ author: { kind: string }; text: string }>;
      expect(messages.map((m) => m.author.kind)).toEqual(['member', 'agent']);
    } finally {
      await relay.close();
    }
  });

  it('at a terminal: each line a message in one thread; Ctrl-C stops the running turn; Ctrl-D leaves', async () => {
    const term = terminal(`${process.execPath} ${TAGBOX_BIN} chat --url ${up.url}`, { TAGBOX_HOME: backend.home });
    try {
      await term.waitFor(/#general> /);
      term.type('echo one > /workspace/f; echo first-answer\r');
      await term.waitFor(/first-answer\r?\n\[exit code 0\]/);
      term.type('echo waiting; sleep 600\r');
      await term.waitFor(/\nwaiting\r?\n/);
      term.type('\x03');
      await term.waitFor(/Stopped by Owner\./);
      term.type('cat /workspace/f\r');
      await term.waitFor(/\none\r?\n\[exit code 0\]/);
      // Ctrl-D at the prompt (the turn is over once the prompt is back; during a turn it would exit 130).
      await term.waitFor(/#general> /);
      term.type('\x04');
      expect(await term.exited).toBe(0);
      const thread = THREAD_LINE.exec(term.output().replace(/\r/g, ''))?.[1];
      expect(thread).toBeDefined();
      const messages = (await api('GET', `/api/v1/threads/${thread}`)).body.messages as Array<{ author: { kind: string }; text: string }>;
      expect(messages.filter((m) => m.author.kind === 'member').map((m) => m.text)).toEqual(['echo one > /workspace/f; echo first-answer', 'echo waiting; sleep 600', 'cat /workspace/f']);
    } finally {
      term.kill();
    }
  });

  // Last: it restarts the server.
  it('follows the turn across a server restart (Last-Event-ID): the interruption, nothing twice', async () => {
    const child = spawn(process.execPath, [TAGBOX_BIN, 'chat', '--url', up.url, 'echo before-restart; sleep 600'], {
      cwd: REPO_ROOT,
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_'))), TAGBOX_HOME: backend.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await until('the turn to run', () => out.includes('before-restart\n'));
      // A stopping server ends its event streams (it would wait for them forever otherwise).
      expect(await up.stop()).toBe(0);
      await until('the client to notice', () => /reconnecting/.test(err));
      up = await startUp(backend.env, up.port);
      expect(await exited).toBe(1);
      expect(err).toContain('reconnected');
      expect(err).toMatch(/This turn was interrupted: the Tagbox server is stopping/);
      expect(out.split('before-restart').length - 1).toBe(1);
      expect(err).toMatch(THREAD_LINE);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('tagbox chat without a server', () => {
  const homes: string[] = [];
  afterAll(() => {
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });
  const freshHome = () => {
    const home = mkdtempSync(join(tmpdir(), 'tagbox-chat-'));
    homes.push(home);
    return home;
  };

  it('both --channel and --dm: exit 2 naming both', async () => {
    const r = await runTagbox(['chat', '--channel', 'general', '--dm', 'echo hi'], { env: { TAGBOX_HOME: freshHome(), TAGBOX_TOKEN: 'tbx_x' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--channel and --dm');
    expect(r.stdout).toBe('');
  });

  it('no token anywhere: exit 1 saying where a token comes from', async () => {
    const home = freshHome();
    const r = await runTagbox(['chat', '--url', 'http://127.0.0.1:9', 'echo hi'], { env: { TAGBOX_HOME: home } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no API token: pass --token or set TAGBOX_TOKEN');
    expect(r.stderr).toContain(join(home, 'owner.token'));
  });

  it('server unreachable: exit 1 with the address it tried', async () => {
    const port = await closedPort();
    const r = await runTagbox(['chat', '--url', `http://127.0.0.1:${port}`, '--token', 'tbx_x', 'echo hi'], { env: { TAGBOX_HOME: freshHome() } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach Tagbox at http://127.0.0.1:${port}`);
  });
});

async function until(what: string | (() => string), fn: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(50);
  }
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A TCP relay to the server that breaks the connection carrying the first
 * message post as soon as the server answers it: the post arrived, the client
 * never hears so — the network failure an Idempotency-Key is for.
 */
async function cuttingRelay(targetPort: number): Promise<{ port: number; cut(): number; close(): Promise<void> }> {
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let postSent = false;
    client.on('data', (chunk: Buffer) => {
      if (cuts === 0 && /^POST \/api\/v1\/channels\/[^ ]+\/messages /m.test(chunk.toString('latin1'))) postSent = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (postSent && cuts === 0) {
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut: () => cuts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A command on a real pseudo-terminal (util-linux `script`): what it prints, and keys to type. */
function terminal(command: string, env: Record<string, string>) {
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: REPO_ROOT,
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_'))), ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let seen = 0;
  return {
    exited,
    output: () => out,
    type: (keys: string) => child.stdin.write(keys),
    /** Waits for `pattern` in what was printed since the last match. */
    async waitFor(pattern: RegExp) {
      await until(() => `${pattern} on the terminal (got ${JSON.stringify(out.slice(seen))})`, () => pattern.test(out.slice(seen)));
      const match = pattern.exec(out.slice(seen))!;
      seen += match.index + match[0].length;
    },
    kill: () => child.kill('SIGKILL'),
  };
}
