import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { nowIso } from '../../util/ids.js';
import type { SlackFileRef } from './event-route.js';

/**
 * Files shared with a message to the agent. The server fetches them from
 * files.slack.com through the workspace's proxy listener (the bot token is
 * injected there; the sandbox never sees it, nor gets a route to Slack), keeps
 * them with the session, and each turn copies them into the sandbox at
 * /workspace/slack-files/ — so a rebuilt sandbox has them again.
 */
export const FILES_INSIDE = '/workspace/slack-files';
export const FILE_LIMITS = { bytesEach: 10 * 1024 * 1024, bytesPerMessage: 25 * 1024 * 1024 } as const;

export type Fetch = (url: string) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface FetchedFile {
  name: string;
  size: number;
}

/** A name safe as one path segment inside the sandbox: no directories, no dot-files, nothing odd. */
export function safeFileName(name: string, id: string): string {
  const base = name.split(/[/\\]/).pop() ?? '';
  const cleaned = base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 120);
  return cleaned || id;
}

/** Fetches a message's files (at most the limits; the rest are named as skipped) and keeps them under its key. */
export async function fetchMessageFiles(
  db: Kysely<Database>,
  fetch: Fetch,
  input: { workspaceId: string; messageKey: string; files: SlackFileRef[] },
): Promise<{ fetched: FetchedFile[]; skipped: string[] }> {
  const fetched: FetchedFile[] = [];
  const skipped: string[] = [];
  const used = new Set<string>();
  let total = 0;
  for (const file of input.files) {
    let name = safeFileName(file.name, file.id);
    if (used.has(name)) name = `${file.id}-${name}`;
    if (file.size > FILE_LIMITS.bytesEach || total + file.size > FILE_LIMITS.bytesPerMessage) {
      skipped.push(`${name} (over the size limit)`);
      continue;
    }
    const response = await fetch(file.url);
    if (!response.ok) {
      skipped.push(`${name} (Slack answered ${response.status})`);
      continue;
    }
    const content = Buffer.from(await response.arrayBuffer());
    if (content.length > FILE_LIMITS.bytesEach || total + content.length > FILE_LIMITS.bytesPerMessage) {
      skipped.push(`${name} (over the size limit)`);
      continue;
    }
    total += content.length;
    used.add(name);
    await db
      .insertInto('slack_files')
      .values({ workspace_id: input.workspaceId, message_key: input.messageKey, file_id: file.id, session_id: null, name, size: content.length, content: content.toString('base64'), created_at: nowIso() })
      .onConflict((oc) => oc.doNothing())
      .execute();
    fetched.push({ name, size: content.length });
  }
  return { fetched, skipped };
}

/** The message's files now belong to the session its invocation joined. */
export async function attachFiles(db: Kysely<Database>, workspaceId: string, messageKey: string, sessionId: string): Promise<void> {
  await db.updateTable('slack_files').set({ session_id: sessionId }).where('workspace_id', '=', workspaceId).where('message_key', '=', messageKey).execute();
}

/** Every file of a session, for its sandbox. */
export async function sessionFiles(db: Kysely<Database>, sessionId: string): Promise<Array<{ name: string; content: Buffer }>> {
  const rows = await db.selectFrom('slack_files').select(['name', 'content']).where('session_id', '=', sessionId).orderBy('created_at').execute();
  return rows.map((r) => ({ name: r.name, content: Buffer.from(r.content, 'base64') }));
}

/** What the agent is told about the files, appended to the message. */
export function filesNote(result: { fetched: FetchedFile[]; skipped: string[] }): string {
  const lines: string[] = [];
  if (result.fetched.length) lines.push(`[Files shared with this message, in ${FILES_INSIDE}/: ${result.fetched.map((f) => `${f.name} (${f.size} bytes)`).join(', ')}]`);
  if (result.skipped.length) lines.push(`[Not fetched: ${result.skipped.join(', ')}]`);
  return lines.join('\n');
}
