import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));

/**
 * A bench helper script (bench/SCRIPT) in its own Node process, remembered in `children` to be killed at the end;
 * with `cpus` (taskset's list, e.g. "0"), pinned to those CPUs.
 */
export function runNode(children: ChildProcess[], script: string, args: string[], cpus?: string): ChildProcess {
  const argv = [process.execPath, '--import', 'tsx', join(BENCH_DIR, script), ...args];
  const [command, ...rest] = cpus ? ['taskset', '-c', cpus, ...argv] : argv;
  const child = spawn(command!, rest, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

/** The child's next line on stdout (its answer), or a failure if it exits or stays silent. */
export function nextLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      reject(new Error('child did not answer in time'));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      reject(new Error(`child exited with ${code} before answering`));
    };
    child.once('exit', onExit);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i === -1) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      // A child asked many times (the upstream's stats) must not collect one listener per question.
      child.off('exit', onExit);
      resolve(buf.slice(0, i));
    };
    child.stdout!.on('data', onData);
  });
}
