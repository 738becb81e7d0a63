import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { SandboxIdentity } from './identity.js';

const execFileAsync = promisify(execFile);

/**
 * Writes the user-namespace maps of a `separate` sandbox while bubblewrap waits
 * on --userns-block-fd: uid 0 -> Tagbox (bubblewrap's set-up runs as it), uid
 * 1000 -> the sandbox's own host uid. Root writes them itself; an unprivileged
 * Tagbox asks the setuid newuidmap/newgidmap, which allow only its own uid and
 * its /etc/subuid and /etc/subgid ranges.
 */
export async function writeSandboxMaps(identity: Extract<SandboxIdentity, { mode: 'separate' }>, pid: number): Promise<void> {
  const { launcher, sandbox } = identity;
  const uids = [0, launcher.uid, 1, 1000, sandbox.uid, 1];
  const gids = [0, launcher.gid, 1, 1000, sandbox.gid, 1];
  if (identity.maps === 'direct') {
    await writeFile(`/proc/${pid}/uid_map`, mapText(uids));
    await writeFile(`/proc/${pid}/gid_map`, mapText(gids));
    return;
  }
  const run = (tool: string, map: number[]) => execFileAsync(tool, [String(pid), ...map.map(String)], { env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: 10_000 });
  await Promise.all([run('newuidmap', uids), run('newgidmap', gids)]);
}

function mapText(triples: number[]): string {
  let text = '';
  for (let i = 0; i < triples.length; i += 3) text += `${triples[i]} ${triples[i + 1]} ${triples[i + 2]}\n`;
  return text;
}
