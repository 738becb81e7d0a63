import type { Exec } from './channel-memory.js';

/**
 * Files a surface received with a thread's messages (Slack's shared files),
 * copied into the sandbox at each turn (a rebuilt sandbox has them again).
 * Names come from the surface already made safe (one path segment); they are
 * passed as an argument, never spliced into the script, and the content on stdin.
 */
export interface ThreadFile {
  name: string;
  content: Buffer;
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,159}$/;

export async function copyThreadFilesIn(exec: Exec, dir: string, files: ThreadFile[]): Promise<void> {
  for (const file of files) {
    if (!SAFE_NAME.test(file.name)) continue;
    const handle = exec({ argv: ['sh', '-c', 'mkdir -p "$1" && cat > "$1/$2"', 'sh', dir, file.name], cwd: '/workspace', timeoutMs: 30_000, stdin: file.content });
    handle.stdout.resume();
    handle.stderr.resume();
    const { exitCode } = await handle.result;
    if (exitCode !== 0) throw new Error(`could not copy ${file.name} into ${dir} in the sandbox (exit ${exitCode})`);
  }
}
