import { execFile } from 'node:child_process';
import { close, constants, fstat, open } from 'node:fs';
import { Socket } from 'node:net';
import { promisify } from 'node:util';

/**
 * Named pipes between the host and the sandbox's agent. They live in the
 * per-sandbox control directory, which the sandbox sees read-only (it can open
 * the FIFOs, never replace them with links). Opened non-blocking so that no
 * open ever waits for the other side or ties up libuv's thread pool.
 */

const execFileAsync = promisify(execFile);
const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);

/**
 * Node has no mkfifo(3); one coreutils call makes a batch. Mode 0666 because
 * the sandbox may be another host uid; the sandbox's 0700 directory keeps the
 * rest of the host out.
 */
export async function makeFifos(paths: string[]): Promise<void> {
  if (paths.length > 0) await execFileAsync('mkfifo', ['-m', '0666', '--', ...paths], { env: {} });
}

/** A stream of what the sandbox writes into `path`; ends when its last writer closes. */
export async function openFifoReader(path: string): Promise<Socket> {
  const fd = await openFifo(path, constants.O_RDONLY);
  return new Socket({ fd, readable: true, writable: false });
}

/**
 * A writable end of `path`. Opened read-write so that the open succeeds before
 * the agent opens its end and the pipe survives until it does.
 */
export async function openFifoWriter(path: string): Promise<Socket> {
  const fd = await openFifo(path, constants.O_RDWR);
  return new Socket({ fd, readable: false, writable: true });
}

async function openFifo(path: string, mode: number): Promise<number> {
  const fd = await openAsync(path, mode | constants.O_NONBLOCK | constants.O_NOFOLLOW); // libuv adds O_CLOEXEC
  const stat = await fstatAsync(fd);
  if (!stat.isFIFO()) {
    await closeAsync(fd);
    throw new Error(`${path} is not a FIFO`);
  }
  return fd;
}
