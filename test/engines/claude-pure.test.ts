import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { conversationId } from '../../src/engines/claude/claude-engine.js';
import { DISABLED_TOOLS } from '../../src/engines/claude/disabled-tools.js';
import { InputQueue } from '../../src/engines/claude/input-queue.js';
import { promptOf } from '../../src/engines/claude/prompt.js';
import { describeToolUse, eventsOf, failureOf } from '../../src/engines/claude/sdk-events.js';
import { systemPromptAppend } from '../../src/engines/claude/system-prompt.js';
import { creditEnvironment, creditLine } from '../../src/sessions/turn-credit.js';
import { mountArgs } from '../../src/sandbox/mounts.js';

describe('the SDK stream as thread events', () => {
  it('streamed text is progress; sub-agents stream nothing of theirs', () => {
    const delta = (text: string, parent: string | null = null) => ({ type: 'stream_event', parent_tool_use_id: parent, event: { type: 'content_block_delta', delta: { type: 'text_delta', text } } });
    expect(eventsOf(delta('Hel'))).toEqual([{ type: 'progress', text: 'Hel' }]);
    expect(eventsOf(delta('x', 'toolu_1'))).toEqual([]);
    expect(eventsOf({ type: 'stream_event', event: { type: 'content_block_delta', delta: { type: 'input_json_delta', partial_json: '{' } } })).toEqual([]);
  });

  it('each tool use is one progress line saying what runs', () => {
    const assistant = { type: 'assistant', message: { content: [{ type: 'text', text: 'hi' }, { type: 'tool_use', name: 'Bash', input: { command: 'npm   test\n--watch' } }, { type: 'tool_use', name: 'Read', input: { file_path: '/workspace/a.ts' } }] } };
    expect(eventsOf(assistant)).toEqual([
      { type: 'progress', text: '\nrunning `npm test --watch`\n' },
      { type: 'progress', text: '\nreading /workspace/a.ts\n' },
    ]);
    expect(describeToolUse('Edit', { file_path: 'x.ts' })).toBe('editing x.ts');
    expect(describeToolUse('mcp__db__query', {})).toBe('using mcp__db__query');
    expect(describeToolUse('Bash', { command: 'x'.repeat(500) }).length).toBeLessThan(220);
    expect(describeToolUse('Bash', null)).toBe('running a command');
  });

  it('a successful result is usage and the answer; an error result is usage and why', () => {
    const ok = eventsOf({ type: 'result', subtype: 'success', is_error: false, result: 'Done.', num_turns: 2, usage: { input_tokens: 10, output_tokens: 3, cache_read_input_tokens: 4 } });
    expect(ok).toEqual([
      { type: 'usage', data: { inputTokens: 10, outputTokens: 3, cacheReadTokens: 4, cacheCreationTokens: 0, modelTurns: 2, durationMs: 0, engineCostUsd: 0 } },
      { type: 'message', text: 'Done.' },
    ]);
    expect(eventsOf({ type: 'result', subtype: 'success', is_error: false, result: '  ' })[1]).toEqual({ type: 'message', text: '(The agent finished without a reply.)' });
    const max = eventsOf({ type: 'result', subtype: 'error_max_turns', is_error: true, num_turns: 8, usage: {} });
    expect(max[1]).toEqual({ type: 'error', message: expect.stringMatching(/stopped after 8 model turns \(agent\.maxTurns\)/) as unknown as string });
    expect(failureOf({ type: 'result', subtype: 'error_during_execution', errors: ['boom', 7] })).toBe('the agent stopped: boom');
    expect(failureOf({ type: 'result', subtype: 'success', is_error: true, result: 'API Error: 403 budget spent' })).toBe('the agent stopped: API Error: 403 budget spent');
  });

  it('never throws on whatever the stream carries', () => {
    fc.assert(fc.property(fc.anything(), (value) => {
      // Not String(value): an array of objects whose toString is not a function cannot be made a string (the test's own step).
      const message = (value && typeof value === 'object' && !Array.isArray(value) ? value : { type: typeof value === 'string' ? value : 'other', event: value }) as { type: string };
      for (const type of ['stream_event', 'assistant', 'result', message.type]) eventsOf({ ...message, type });
    }));
  });
});

describe('the prompt and the system prompt', () => {
  it('names each author, keeps context apart, strips the mention', () => {
    const text = promptOf([
      { text: 'the build is red', author: { kind: 'member', name: 'Ada' }, context: true },
      { text: '@tagbox why is it red?', author: { kind: 'member', name: 'Bob' } },
    ]);
    expect(text).toBe('Earlier in this thread (for context):\nAda: the build is red\n\nBob: why is it red?');
  });

  it('org instructions come before the channel\'s; memory shows its path and content', () => {
    const text = systemPromptAppend({ place: { kind: 'channel', name: 'eng' }, orgInstructions: 'ORG', channelInstructions: 'CHAN', memory: { path: '/home/agent/.tagbox/memory.md', content: 'deploys on Fridays are off' } });
    expect(text.indexOf('ORG')).toBeLessThan(text.indexOf('CHAN'));
    expect(text).toContain('# Instructions for #eng\nCHAN');
    expect(text).toContain('/home/agent/.tagbox/memory.md');
    expect(text).toContain('<memory>\ndeploys on Fridays are off\n</memory>');
    const dm = systemPromptAppend({ place: { kind: 'dm', memberName: 'Ada' }, orgInstructions: '  ', memory: { path: '/m', content: '' } });
    expect(dm).toContain('direct message with Ada');
    expect(dm).not.toContain('Instructions');
    expect(dm).toContain('It is empty.');
  });

  it("with credit: a GitHub section naming the thread's branch, whom commits credit, and the pull request's credit line", () => {
    const credit = { name: 'Ada Lovelace', email: 'ada@example.com', place: '#eng', thread: 'th1', branch: 'tagbox/th1' };
    const line = creditLine(credit);
    const text = systemPromptAppend({ place: { kind: 'channel', name: 'eng' }, orgInstructions: 'ORG', credit: { name: credit.name, branch: credit.branch, line } });
    const section = text.slice(text.indexOf('# GitHub'), text.indexOf('# Instructions from the organisation'));
    expect(text.match(/^# GitHub$/gm)).toHaveLength(1);
    expect(section).toContain('Push your work to the branch tagbox/th1 (also in $TAGBOX_BRANCH)');
    expect(section).toContain('(head tagbox/th1)');
    expect(section).toContain('Commits are credited to Ada Lovelace automatically');
    // The credit line on a line of its own, exactly as the environment's TAGBOX_CREDIT has it.
    expect(section.split('\n')).toContain('Requested by Ada Lovelace in #eng (Tagbox thread th1).');
    expect(section.split('\n')).toContain(creditEnvironment(credit, 'th1').TAGBOX_CREDIT);
    // After the Tagbox section, before the instructions.
    expect(text.indexOf('# Tagbox')).toBeLessThan(text.indexOf('# GitHub'));
    expect(text.indexOf('# GitHub')).toBeLessThan(text.indexOf('ORG'));
  });

  it('without credit: no GitHub section', () => {
    for (const place of [{ kind: 'channel', name: 'eng' } as const, { kind: 'dm', memberName: 'Ada' } as const]) {
      const text = systemPromptAppend({ place, memory: { path: '/m', content: 'x' }, channelInstructions: 'CHAN' });
      expect(text).not.toContain('# GitHub');
      expect(text).not.toContain('TAGBOX_BRANCH');
      expect(text).not.toContain('Requested by');
    }
  });
});

describe('engine plumbing', () => {
  it("a session's conversation id is a stable UUID, distinct per session", () => {
    fc.assert(fc.property(fc.string(), fc.string(), (a, b) => {
      expect(conversationId(a)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(conversationId(a)).toBe(conversationId(a));
      if (a !== b) expect(conversationId(a)).not.toBe(conversationId(b));
    }));
  });

  it('every disabled tool says why', () => {
    for (const [name, why] of Object.entries(DISABLED_TOOLS)) {
      expect(name).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(why.length).toBeGreaterThan(15);
    }
    expect(Object.keys(DISABLED_TOOLS)).toEqual(expect.arrayContaining(['WebSearch', 'CronCreate', 'ScheduleWakeup', 'RemoteTrigger']));
  });

  it('the input queue yields what was pushed, in order, and ends when closed', async () => {
    const q = new InputQueue<number>();
    q.push(1);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const n of q) seen.push(n);
    })();
    q.push(2);
    await new Promise((r) => setTimeout(r, 5));
    q.push(3);
    q.close();
    await reading;
    expect(seen).toEqual([1, 2, 3]);
    expect(() => q.push(4)).toThrow(/closed/);
  });

  it('read-only mounts go under /opt/tagbox only', () => {
    expect(mountArgs([{ source: '/usr/lib/x', target: '/opt/tagbox/plugins/a' }])).toEqual(['--dir', '/opt', '--dir', '/opt/tagbox', '--dir', '/opt/tagbox/plugins', '--ro-bind', '/usr/lib/x', '/opt/tagbox/plugins/a']);
    for (const target of ['/usr/bin', '/opt/tagbox', '/opt/tagbox/../../etc', '/opt/tagbox/a/../../x', 'opt/tagbox/a', '/opt/tagbox/a b', '/run/tagbox/proxy.sock', '/workspace/x']) {
      expect(() => mountArgs([{ source: '/x', target }]), target).toThrow(/expected a path under \/opt\/tagbox/);
    }
    expect(() => mountArgs([{ source: 'relative', target: '/opt/tagbox/a' }])).toThrow(/absolute/);
    expect(() => mountArgs([{ source: '/a/../b', target: '/opt/tagbox/a' }])).toThrow(/normalised/);
  });
});
