import type { Command } from 'commander';
import { failure, invalidInput } from '../errors.js';
import { compileCron, DEFAULT_TIMEZONE } from '../surfaces/schedules/fire-times.js';
import { ApiError, apiClient, withApiFlags, type ApiClient, type ApiFlags } from './api-client.js';
import { contextFrom } from './context.js';

/**
 * `tagbox schedule add | list | rm` (CONTRACT.md "Schedules"), through the
 * running server's API as a member. Input is checked locally first
 * (`checkAdd`, `checkId`: exit 2 before any request); the command parts
 * (`scheduleAdd`, `scheduleList`, `scheduleRemove`) take an ApiClient and
 * return what to print, so they can be driven without a terminal;
 * `registerSchedule` only parses flags and writes their output.
 */
export interface ScheduleView {
  id: string;
  channel: string;
  cron: string;
  timezone: string;
  prompt: string;
  createdBy: string;
  createdAt: string;
  nextRun: string | null;
}

/** What GET /api/v1/channels answers: the channels the caller may use. */
export interface ChannelRef {
  id: string;
  name: string;
  workspaceId: string;
  isPrivate: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function registerSchedule(program: Command): void {
  const schedule = program.command('schedule').description('cron-timed prompts posted into a channel (each firing starts a new thread, as if you had typed it)');

  withApiFlags(
    schedule
      .command('add')
      .description('schedule a prompt in a channel')
      .requiredOption('--channel <id-or-name>', 'the channel: its id, or its name (#eng or eng) among the channels you may use')
      .requiredOption('--cron <expr>', 'five-field cron "minute hour day-of-month month day-of-week", e.g. "0 9 * * 1-5", or @daily etc.')
      .option('--timezone <tz>', `IANA time zone the expression is read in (default ${DEFAULT_TIMEZONE})`)
      .option('--json', 'print the created schedule as JSON')
      .argument('<prompt...>', 'the text to post (words are joined with spaces)'),
  ).action(async (words: string[], opts: ApiFlags & { channel: string; cron: string; timezone?: string; json?: boolean }, command: Command) => {
    const input = checkAdd({ channel: opts.channel, cron: opts.cron, prompt: words.join(' '), ...(opts.timezone !== undefined ? { timezone: opts.timezone } : {}) });
    const created = await scheduleAdd(apiClient(contextFrom(command), opts), input);
    process.stdout.write(opts.json ? `${JSON.stringify(created)}\n` : `created schedule ${created.id}: "${created.cron}" (${created.timezone}), next run ${created.nextRun ?? 'never'}\n`);
  });

  withApiFlags(
    schedule
      .command('list')
      .alias('ls')
      .description('list the schedules you can see (admins: all of the org), or those of one channel')
      .option('--channel <id-or-name>', 'only this channel')
      .option('--json', 'print a JSON array'),
  ).action(async (opts: ApiFlags & { channel?: string; json?: boolean }, command: Command) => {
    const client = apiClient(contextFrom(command), opts);
    const { schedules, channelNames } = await scheduleList(client, opts.channel);
    process.stdout.write(opts.json ? `${JSON.stringify(schedules)}\n` : formatSchedules(schedules, channelNames));
  });

  withApiFlags(
    schedule
      .command('rm')
      .alias('delete')
      .description('delete a schedule (yours, or any as an admin)')
      .argument('<id>', 'the schedule id (as `tagbox schedule list` shows it)'),
  ).action(async (id: string, opts: ApiFlags, command: Command) => {
    checkId(id);
    await scheduleRemove(apiClient(contextFrom(command), opts), id);
    process.stdout.write(`removed schedule ${id}\n`);
  });
}

export interface AddInput {
  channel: string;
  cron: string;
  timezone: string;
  prompt: string;
}

/** What can be checked without the server (exit 2 before any request, or any token is needed). */
export function checkAdd(input: { channel: string; cron: string; timezone?: string; prompt: string }): AddInput {
  const compiled = compileCron(input.cron, input.timezone ?? DEFAULT_TIMEZONE, { cron: '--cron', timezone: '--timezone' });
  if (input.prompt.trim().length === 0) throw invalidInput('PROMPT: expected the text to post in the channel, got an empty one');
  if (input.channel.replace(/^#/, '').length === 0) throw invalidInput('--channel: expected a channel id or name, got nothing');
  return { channel: input.channel, cron: compiled.cron, timezone: compiled.timezone, prompt: input.prompt };
}

/** Resolves the channel and creates the schedule; the server checks everything again. */
export async function scheduleAdd(client: ApiClient, input: AddInput): Promise<ScheduleView> {
  const channel = await resolveChannel(client, input.channel);
  return client.call<ScheduleView>('POST', `/api/v1/channels/${encodeURIComponent(channel)}/schedules`, { cron: input.cron, timezone: input.timezone, prompt: input.prompt });
}

export async function scheduleList(client: ApiClient, channel?: string): Promise<{ schedules: ScheduleView[]; channelNames: Map<string, string> }> {
  const channels = await listChannels(client);
  const id = channel === undefined ? undefined : channels ? pickChannel(channels, channel) : await resolveChannel(client, channel);
  const schedules = await client.call<ScheduleView[]>('GET', id ? `/api/v1/channels/${encodeURIComponent(id)}/schedules` : '/api/v1/schedules');
  return { schedules, channelNames: new Map((channels ?? []).map((c) => [c.id, c.name])) };
}

export function checkId(id: string): string {
  if (!/^[A-Za-z0-9-]{1,100}$/.test(id)) throw invalidInput(`ID: expected a schedule id (as \`tagbox schedule list\` shows it), got "${id}"`);
  return id;
}

export async function scheduleRemove(client: ApiClient, id: string): Promise<void> {
  await client.call('DELETE', `/api/v1/schedules/${encodeURIComponent(checkId(id))}`);
}

/** A channel id as given, or the id of the one channel of that name the caller may use. */
export async function resolveChannel(client: ApiClient, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const channels = await listChannels(client);
  if (!channels) throw failure(`--channel "${ref}": this server cannot look channels up by name (no GET /api/v1/channels); pass the channel's id`, 'api_error');
  return pickChannel(channels, ref);
}

/** Pure: by id, else by exact name (a leading # is ignored), else by name in any case; exactly one must match. */
export function pickChannel(channels: ChannelRef[], ref: string): string {
  if (channels.some((c) => c.id === ref)) return ref;
  const name = ref.replace(/^#/, '');
  if (name.length === 0) throw invalidInput('--channel: expected a channel id or name, got nothing');
  let matches = channels.filter((c) => c.name === name);
  if (matches.length === 0) matches = channels.filter((c) => c.name.toLowerCase() === name.toLowerCase());
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length > 1) {
    throw invalidInput(`--channel "${ref}": ${matches.length} channels you may use have that name (in different workspaces); pass one of their ids: ${matches.map((c) => c.id).join(', ')}`);
  }
  const known = channels.map((c) => `#${c.name}`).slice(0, 10).join(', ');
  throw invalidInput(`--channel "${ref}": no channel of that name among those you may use${known ? ` (${known}${channels.length > 10 ? ', ...' : ''})` : ''}`);
}

/** The channels the caller may use, or undefined when the server has no such endpoint. */
async function listChannels(client: ApiClient): Promise<ChannelRef[] | undefined> {
  try {
    return await client.call<ChannelRef[]>('GET', '/api/v1/channels');
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

const PROMPT_WIDTH = 50;

/** A table for people; cells never carry control characters (a prompt is someone else's text in your terminal). */
export function formatSchedules(schedules: ScheduleView[], channelNames: Map<string, string> = new Map()): string {
  if (schedules.length === 0) return 'no schedules\n';
  const channelOf = (id: string) => (channelNames.has(id) ? `#${channelNames.get(id)!}` : id);
  const rows = [
    ['ID', 'CHANNEL', 'CRON', 'TIMEZONE', 'NEXT RUN', 'CREATED BY', 'PROMPT'],
    ...schedules.map((s) => [s.id, channelOf(s.channel), s.cron, s.timezone, s.nextRun ?? 'never', s.createdBy, shorten(s.prompt, PROMPT_WIDTH)].map(printable)),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

function shorten(text: string, width: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

function printable(cell: string): string {
  // C0 and C1 controls (ESC starts terminal sequences), DEL, and the bidi controls that reorder what follows.
  // eslint-disable-next-line no-control-regex
  return cell.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
}
