import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecRequest, Sandbox } from '../../src/sandbox/index.js';
import { copyMemoryIn, copyMemoryOut, MEMORY_CUT_LINE, MEMORY_MAX_BYTES, MEMORY_PATH, type Exec } from '../../src/sessions/channel-memory.js';
import { fixture, sh, type Fixture } from '../sandbox/helpers.js';

/**
 * Copying the memory file in and out of a real bubblewrap sandbox, and what
 * an agent can leave at its path instead of a file: links to other files, a
 * directory, a FIFO, a linked directory. None is followed or written through.
 */
describe('channel memory, in and out of a sandbox', () => {
  let f: Fixture;
  let sandbox: Sandbox;
  let exec: Exec;
  const requests: ExecRequest[] = [];
  const run = async (script: string) => {
    const result = await sh(f, sandbox, script);
    return { ...result, out: result.stdout };
  };

  beforeAll(async () => {
    f = await fixture();
    sandbox = await f.create();
    exec = (request) => {
      requests.push(request);
      return f.provider.exec(sandbox, request);
    };
  }, 60_000);
  afterAll(async () => f?.close());

  it('writes the file from stdin, owned by the agent, and reads it back as it was', async () => {
    const content = 'remember: X\nünïcödé 日本 🙂\n\tindented\n';
    requests.length = 0;
    await copyMemoryIn(exec, content);
    // The agent's text went through stdin only, never on a command line.
    expect(requests).toHaveLength(1);
    expect(Buffer.from(requests[0]!.stdin as Uint8Array).toString('utf8')).toBe(content);
    expect(requests[0]!.argv.join(' ')).not.toContain('remember');
    const stat = await run(`stat -c '%U %F' ${MEMORY_PATH}; cat ${MEMORY_PATH}`);
    expect(stat.out).toBe(`agent regular file\n${content}`);
    expect(await copyMemoryOut(exec)).toEqual({ ok: true, content, cut: false });
  });

  it('reads a missing file as an empty memory, and writes an empty one', async () => {
    await run(`rm -rf ~/.tagbox`);
    expect(await copyMemoryOut(exec)).toEqual({ ok: true, content: '', cut: false });
    await copyMemoryIn(exec, '');
    expect((await run(`test -f ${MEMORY_PATH} && wc -c < ${MEMORY_PATH}`)).out.trim()).toBe('0');
  });

  it('reads at most the cap plus one byte, and cuts a bigger file at a line boundary', async () => {
    await run(`yes 'a line of the memory file' | head -c 200000 > ${MEMORY_PATH}`);
    const copy = await copyMemoryOut(exec);
    expect(copy.ok && copy.cut).toBe(true);
    const content = copy.ok ? copy.content : '';
    expect(Buffer.byteLength(content)).toBeLessThanOrEqual(MEMORY_MAX_BYTES);
    expect(content.endsWith(`a line of the memory file\n${MEMORY_CUT_LINE}\n`)).toBe(true);
  });

  it('refuses a symbolic link at the path, to a file it could read or one it could not', async () => {
    for (const target of ['/etc/passwd', '/workspace/secret-notes', '/nonexistent']) {
      await run(`echo private > /workspace/secret-notes; rm -rf ${MEMORY_PATH}; ln -s ${target} ${MEMORY_PATH}`);
      const copy = await copyMemoryOut(exec);
      expect(copy).toEqual({ ok: false, refused: 'link', reason: expect.stringMatching(/symbolic link/) });
    }
  });

  it('refuses a linked directory, a directory and a FIFO at the path', async () => {
    await run(`rm -rf ~/.tagbox; mkdir -p /workspace/elsewhere; echo theirs > /workspace/elsewhere/memory.md; ln -s /workspace/elsewhere ~/.tagbox`);
    expect(await copyMemoryOut(exec)).toEqual({ ok: false, refused: 'link', reason: expect.stringMatching(/symbolic link/) });
    for (const make of [`mkdir ${MEMORY_PATH}`, `mkfifo ${MEMORY_PATH}`]) {
      await run(`rm -rf ~/.tagbox; mkdir -p ~/.tagbox; ${make}`);
      const started = Date.now();
      expect(await copyMemoryOut(exec)).toEqual({ ok: false, refused: 'special', reason: expect.stringMatching(/not a regular file/) });
      // A FIFO is never opened: nothing waits for a writer.
      expect(Date.now() - started).toBeLessThan(5000);
    }
  });

  it('copying in replaces whatever the agent left there, and never writes through a link', async () => {
    await run(`echo original > /workspace/target; rm -rf ~/.tagbox; mkdir -p ~/.tagbox; ln -s /workspace/target ${MEMORY_PATH}`);
    await copyMemoryIn(exec, 'fresh\n');
    expect((await run(`cat /workspace/target; [ -L ${MEMORY_PATH} ] && echo link; cat ${MEMORY_PATH}`)).out).toBe('original\nfresh\n');
    // A linked directory is replaced by a real one; what it pointed at is left alone.
    await run(`rm -rf ~/.tagbox; mkdir -p /workspace/elsewhere; echo theirs > /workspace/elsewhere/memory.md; ln -s /workspace/elsewhere ~/.tagbox`);
    await copyMemoryIn(exec, 'again\n');
    expect((await run(`cat /workspace/elsewhere/memory.md; [ -L ~/.tagbox ] || echo dir; cat ${MEMORY_PATH}`)).out).toBe('theirs\ndir\nagain\n');
    // A directory, or a read-only one, at the path is replaced too.
    await run(`rm -rf ~/.tagbox; mkdir -p ${MEMORY_PATH}/sub; chmod 500 ~/.tagbox`);
    await copyMemoryIn(exec, 'third\n');
    expect(await copyMemoryOut(exec)).toEqual({ ok: true, content: 'third\n', cut: false });
  });

  it('says why a file the agent made unreadable could not be read, and replaces it on the next copy in', async () => {
    await copyMemoryIn(exec, 'x\n');
    await run(`chmod 000 ${MEMORY_PATH}`);
    const copy = await copyMemoryOut(exec);
    expect(copy).toEqual({ ok: false, refused: 'unreadable', reason: expect.stringMatching(/could not be read \(exit 1/) });
    // The next copy in replaces it.
    await copyMemoryIn(exec, 'y\n');
    expect(await copyMemoryOut(exec)).toEqual({ ok: true, content: 'y\n', cut: false });
  });
});
