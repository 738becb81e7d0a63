import { getMember } from '../access/members-repo.js';
import { getOrg } from '../access/orgs-repo.js';
import { getChannel } from '../access/workspaces-repo.js';
import type { TurnSetting } from '../engines/engine.js';
import type { ControlStore } from '../store/database.js';
import type { Session } from './model.js';
import type { TurnSandbox } from './session-sandboxes.js';

/**
 * What the engine is told about where it works, read when the turn starts (so
 * an admin's change applies to the next turn): the place, the custom
 * instructions — the org's, then the channel's — the memory copied in, and the
 * plugins mounted.
 */
export async function turnSetting(db: ControlStore['db'], session: Session, sandbox: TurnSandbox): Promise<TurnSetting> {
  const org = await getOrg(db, session.orgId);
  const common = { memory: sandbox.memory, plugins: sandbox.plugins ?? [] };
  const orgInstructions = org?.instructions ? { org: org.instructions } : {};
  if (session.place.kind === 'channel') {
    const channel = await getChannel(db, session.place.channelId);
    return {
      place: { kind: 'channel', ...(channel?.name ? { name: channel.name } : {}) },
      instructions: { ...orgInstructions, ...(channel?.instructions ? { channel: channel.instructions } : {}) },
      ...common,
    };
  }
  const member = await getMember(db, session.place.memberId);
  return { place: { kind: 'dm', ...(member ? { memberName: member.displayName } : {}) }, instructions: orgInstructions, ...common };
}
