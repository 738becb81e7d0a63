import { describe, expect, it } from 'vitest';
import { SseParser } from '../../../src/cli/chat/sse-parser.js';

/** Feeds a stream in the given pieces; returns every event dispatched. */
function parse(...pieces: string[]) {
  const parser = new SseParser();
  return { events: pieces.flatMap((p) => parser.push(p)), parser };
}

describe('SseParser', () => {
  it('joins multi-line data, skips comments, names events, keeps the last id across events', () => {
    const { events, parser } = parse(': tagbox thread events\n\n', 'id: 7\nevent: progress\ndata: {"a":\ndata: 1}\n\n', ': keep-alive\n\n', 'data: no id or name\n\n');
    expect(events).toEqual([
      { type: 'progress', data: '{"a":\n1}', id: '7' },
      { type: 'message', data: 'no id or name', id: '7' },
    ]);
    expect(parser.lastEventId).toBe('7');
  });

  it('gives the same events however the stream is cut, with LF, CRLF or CR line ends (a CRLF split across chunks too)', () => {
    const stream = 'id: 1\r\nevent: message\r\ndata: x\r\n\r\nid: 2\rdata: y\r\rid: 3\ndata: z\n\n';
    const whole = parse(stream).events;
    expect(whole.map((e) => [e.id, e.data])).toEqual([
      ['1', 'x'],
      ['2', 'y'],
      ['3', 'z'],
    ]);
    for (let cut = 1; cut < stream.length; cut++) expect(parse(stream.slice(0, cut), stream.slice(cut)).events, `cut at ${cut}`).toEqual(whole);
    expect(parse(...stream.split('')).events).toEqual(whole);
  });

  it('one leading space is dropped from a value, no more; a field without a colon is empty; data: alone is an empty line', () => {
    expect(parse('data:  two spaces\ndata\ndata:\n\n').events).toEqual([{ type: 'message', data: ' two spaces\n\n', id: '' }]);
  });

  it('dispatches nothing without data, and nothing cut off by the end of the stream', () => {
    const { events, parser } = parse('id: 5\nevent: done\n\n', 'id: 6\ndata: {"unfinished":true}\n');
    expect(events).toEqual([]);
    // The id of an event without data still counts (the standard's EventSource).
    expect(parser.lastEventId).toBe('6');
  });

  it('ignores an id holding NUL, reads retry: as milliseconds (digits only), drops a leading BOM', () => {
    const { events, parser } = parse('\ufeffid: 1\ndata: a\n\nid: 2\u0000x\nretry: soon\ndata: b\n\nretry: 1500\n\n');
    expect(events.map((e) => e.id)).toEqual(['1', '1']);
    expect(parser.retryMs).toBe(1500);
  });
});
