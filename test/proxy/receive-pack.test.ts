import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgePush } from '../../src/policy/push-policy.js';
import { FLUSH_PKT, MAX_PKT_LENGTH, pkt, readPacket, sideband } from '../../src/proxy/git-pkt-line.js';
import { CommandsReader, parseReceivePackCommands, pushCapabilities, type RefCommand } from '../../src/proxy/receive-pack-commands.js';
import { parseReport, RECEIVE_PACK_RESULT_TYPE, refusalReport, unreadablePushReport } from '../../src/proxy/receive-pack-report.js';

const ZERO = '0'.repeat(40);
const A = 'a'.repeat(40);
const B = '0123456789abcdef0123456789abcdef01234567';
const S256 = 'c'.repeat(64);
const CAPS = ' report-status-v2 side-band-64k quiet object-format=sha1 agent=git/2.39.5';
const PACK = Buffer.concat([Buffer.from('PACK\0\0\0\x02\0\0\0\0', 'latin1'), Buffer.alloc(20, 0xab)]);

const buf = (...parts: Array<string | Buffer>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
const line = (old: string, neu: string, ref: string, caps?: string) => pkt(`${old} ${neu} ${ref}${caps === undefined ? '' : `\0${caps}`}\n`);

/** A push request as git sends it: commands (capabilities on the first), flush, then the pack. */
function request(commands: RefCommand[], caps = CAPS, pack: Buffer = PACK): Buffer {
  return buf(...commands.map((c, i) => line(c.oldOid, c.newOid, c.ref, i === 0 ? caps : undefined)), FLUSH_PKT, pack);
}

describe('git-pkt-line', () => {
  it('reads data, flush, delimiter and response-end packets', () => {
    const b = buf('0009hello', '0000', '0001', '0002', '0004');
    expect(readPacket(b, 0)).toEqual({ kind: 'data', payload: Buffer.from('hello'), next: 9 });
    expect(readPacket(b, 9)).toEqual({ kind: 'flush', next: 13 });
    expect(readPacket(b, 13)).toEqual({ kind: 'delim', next: 17 });
    expect(readPacket(b, 17)).toEqual({ kind: 'end', next: 21 });
    expect(readPacket(b, 21)).toEqual({ kind: 'data', payload: Buffer.alloc(0), next: 25 });
    expect(readPacket(b, 25)).toEqual({ kind: 'incomplete' });
  });

  it('accepts upper-case hex lengths', () => {
    expect(readPacket(buf('000Aabcdef'), 0)).toMatchObject({ kind: 'data', next: 10 });
  });

  it('says incomplete until the whole packet is there', () => {
    const whole = pkt('some payload\n');
    for (let n = 0; n < whole.length; n++) expect(readPacket(whole.subarray(0, n), 0)).toEqual({ kind: 'incomplete' });
    expect(readPacket(whole, 0).kind).toBe('data');
  });

  it.each([
    ['zzzz', 'a pkt-line length is not four hex digits'],
    ['00g0', 'a pkt-line length is not four hex digits'],
    [' 004', 'a pkt-line length is not four hex digits'],
    ['+004', 'a pkt-line length is not four hex digits'],
    ['0x04', 'a pkt-line length is not four hex digits'],
    ['0003', 'a pkt-line length of 3 is out of range'],
    ['fff1', 'a pkt-line length of 65521 is out of range'],
    ['ffff', 'a pkt-line length of 65535 is out of range'],
  ])('refuses the length %j', (head, reason) => {
    expect(readPacket(buf(head, 'x'.repeat(10)), 0)).toEqual({ kind: 'invalid', reason });
  });

  it('takes the largest packet, 65520 bytes', () => {
    expect(MAX_PKT_LENGTH).toBe(65520);
    const p = pkt(Buffer.alloc(65516, 0x61));
    expect(p.subarray(0, 4).toString()).toBe('fff0');
    expect(readPacket(p, 0)).toMatchObject({ kind: 'data', next: 65520 });
    expect(() => pkt(Buffer.alloc(65517))).toThrow('pkt-line payload too long');
  });

  it('pkt counts UTF-8 bytes and its own four', () => {
    expect(pkt('é').toString('latin1')).toBe('0006\xc3\xa9');
    expect(pkt('').toString()).toBe('0004');
    expect(FLUSH_PKT.toString()).toBe('0000');
  });

  it('sideband splits data into packets that fit, each with its band, and joins back', () => {
    const data = Buffer.alloc(200_000);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const out = sideband(1, data);
    const parts: Buffer[] = [];
    let offset = 0;
    while (offset < out.length) {
      const p = readPacket(out, offset);
      if (p.kind !== 'data') throw new Error(`unexpected ${p.kind}`);
      expect(p.payload.length + 4).toBeLessThanOrEqual(MAX_PKT_LENGTH);
      expect(p.payload[0]).toBe(1);
      parts.push(p.payload.subarray(1));
      offset = p.next;
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(parts).toHaveLength(Math.ceil(200_000 / 65515));
    expect(sideband(2, Buffer.alloc(0)).length).toBe(0);
    expect(sideband(3, Buffer.from('x')).toString('latin1')).toBe('0006\x03x');
  });
});

describe('parseReceivePackCommands', () => {
  it('reads the commands and capabilities of a push, and stops at the flush: length points at the pack', () => {
    const body = request([
      { oldOid: A, newOid: B, ref: 'refs/heads/main' },
      { oldOid: ZERO, newOid: B, ref: 'refs/heads/tagbox/x' },
      { oldOid: A, newOid: ZERO, ref: 'refs/tags/v1' },
    ]);
    const r = parseReceivePackCommands(body);
    expect(r).toEqual({
      kind: 'commands',
      commands: [
        { oldOid: A, newOid: B, ref: 'refs/heads/main' },
        { oldOid: ZERO, newOid: B, ref: 'refs/heads/tagbox/x' },
        { oldOid: A, newOid: ZERO, ref: 'refs/tags/v1' },
      ],
      capabilities: ['report-status-v2', 'side-band-64k', 'quiet', 'object-format=sha1', 'agent=git/2.39.5'],
      length: body.length - PACK.length,
    });
    if (r.kind !== 'commands') throw new Error('unreachable');
    expect(body.subarray(r.length).equals(PACK)).toBe(true);
  });

  it('never reads past the flush: whatever follows (pack, push options, garbage) does not matter', () => {
    const head = request([{ oldOid: A, newOid: B, ref: 'refs/heads/x' }], CAPS, Buffer.alloc(0));
    for (const tail of [PACK, buf('zzzz'), buf('0003'), buf('\0\0\0'), buf(pkt('push-cert\0'), FLUSH_PKT), Buffer.alloc(100_000, 0xff)]) {
      expect(parseReceivePackCommands(buf(head, tail))).toMatchObject({ kind: 'commands', length: head.length });
    }
  });

  it('a bare flush is a push of no commands', () => {
    expect(parseReceivePackCommands(buf('0000'))).toEqual({ kind: 'commands', commands: [], capabilities: [], length: 4 });
    expect(parseReceivePackCommands(buf('0000', PACK))).toEqual({ kind: 'commands', commands: [], capabilities: [], length: 4 });
  });

  it('capabilities: after a NUL on the first command only; none without one', () => {
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/x'), FLUSH_PKT))).toMatchObject({ kind: 'commands', capabilities: [], commands: [{ ref: 'refs/heads/x' }] });
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/x', ''), FLUSH_PKT))).toMatchObject({ kind: 'commands', capabilities: [] });
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/x', 'report-status  side-band-64k '), FLUSH_PKT))).toMatchObject({ capabilities: ['report-status', 'side-band-64k'] });
    // without the trailing newline too
    expect(parseReceivePackCommands(buf(pkt(`${A} ${B} refs/heads/x\0 report-status`), FLUSH_PKT))).toMatchObject({ kind: 'commands', capabilities: ['report-status'], commands: [{ ref: 'refs/heads/x' }] });
  });

  it('a NUL on a later command is refused (only the first carries capabilities)', () => {
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/x', 'report-status'), line(A, B, 'refs/heads/y', 'side-band-64k'), FLUSH_PKT))).toEqual({
      kind: 'invalid',
      reason: 'a ref-update command names a ref that is not refs/… in printable ASCII',
    });
  });

  it('skips shallow lines before the commands', () => {
    const body = buf(pkt(`shallow ${A}\n`), pkt(`shallow ${B}`), pkt(`shallow ${S256}\n`), line(A, B, 'refs/heads/x', CAPS), FLUSH_PKT, PACK);
    expect(parseReceivePackCommands(body)).toEqual({
      kind: 'commands',
      commands: [{ oldOid: A, newOid: B, ref: 'refs/heads/x' }],
      capabilities: ['report-status-v2', 'side-band-64k', 'quiet', 'object-format=sha1', 'agent=git/2.39.5'],
      length: body.length - PACK.length,
    });
    expect(parseReceivePackCommands(buf(pkt(`shallow ${A}\n`), FLUSH_PKT))).toEqual({ kind: 'commands', commands: [], capabilities: [], length: 57 });
  });

  it.each([`shallow ${A.toUpperCase()}`, 'shallow ', `shallow ${A.slice(1)}`, `shallow ${A} `, `shallow  ${A}`, `shallow ${A}x`])('refuses a shallow line without an object id: %j', (text) => {
    expect(parseReceivePackCommands(buf(pkt(`${text}\n`), line(A, B, 'refs/heads/x'), FLUSH_PKT))).toEqual({ kind: 'invalid', reason: 'a shallow line without an object id' });
  });

  it('a shallow line after the first command is not a command', () => {
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/x', CAPS), pkt(`shallow ${A}\n`), FLUSH_PKT))).toEqual({
      kind: 'invalid',
      reason: 'a ref-update command is not "<old-oid> <new-oid> <ref>"',
    });
  });

  it.each([`push-cert\0${CAPS}\n`, 'push-cert\n', 'push-cert'])('refuses a signed push (%j)', (first) => {
    const body = buf(pkt(first), pkt('certificate version 0.1\n'), pkt('pusher x\n'), pkt('\n'), pkt(`${A} ${B} refs/heads/x\n`), pkt('push-cert-end\n'), FLUSH_PKT);
    expect(parseReceivePackCommands(body)).toEqual({ kind: 'invalid', reason: 'signed pushes (push certificates) are not supported through Tagbox' });
  });

  it('refuses a signed push after shallow lines too', () => {
    expect(parseReceivePackCommands(buf(pkt(`shallow ${A}\n`), pkt(`push-cert\0${CAPS}\n`), FLUSH_PKT))).toMatchObject({ kind: 'invalid', reason: /signed pushes/ });
  });

  const NOT_A_COMMAND = 'a ref-update command is not "<old-oid> <new-oid> <ref>"';
  it.each([
    ['upper-case hex', `${A.toUpperCase()} ${B} refs/heads/x`],
    ['39 digits', `${A.slice(1)} ${B} refs/heads/x`],
    ['41 digits', `${A}a ${B} refs/heads/x`],
    ['not hex', `${'g'.repeat(40)} ${B} refs/heads/x`],
    ['empty old', ` ${B} refs/heads/x`],
    ['sha1 and sha256 in one command', `${A} ${S256} refs/heads/x`],
    ['sha256 and sha1 in one command', `${S256} ${ZERO} refs/heads/x`],
    ['two fields', `${A} ${B}`],
    ['four fields', `${A} ${B} refs/heads/x extra`],
    ['a space in the ref', `${A} ${B} refs/heads/a b`],
    ['two spaces', `${A}  ${B} refs/heads/x`],
    ['a tab separator', `${A}\t${B} refs/heads/x`],
    ['empty', ''],
    ['a word', 'hello'],
  ])('refuses %s', (_why, text) => {
    expect(parseReceivePackCommands(buf(pkt(`${text}\n`), FLUSH_PKT))).toEqual({ kind: 'invalid', reason: NOT_A_COMMAND });
    // on a later command too
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/ok', CAPS), pkt(`${text}\n`), FLUSH_PKT))).toEqual({ kind: 'invalid', reason: NOT_A_COMMAND });
  });

  it('reads sha256 commands', () => {
    expect(parseReceivePackCommands(buf(line('0'.repeat(64), S256, 'refs/heads/x', ' object-format=sha256'), FLUSH_PKT))).toMatchObject({
      kind: 'commands',
      commands: [{ oldOid: '0'.repeat(64), newOid: S256, ref: 'refs/heads/x' }],
      capabilities: ['object-format=sha256'],
    });
  });

  const BAD_REF = 'a ref-update command names a ref that is not refs/… in printable ASCII';
  it.each([
    ['a control character', 'refs/heads/a\x01b'],
    ['an escape', 'refs/heads/\x1b[31mred'],
    ['DEL', 'refs/heads/a\x7f'],
    ['a carriage return', 'refs/heads/x\r'],
    ['a newline inside', 'refs/heads/x\ny'],
    ['non-ASCII', 'refs/heads/caf\xc3\xa9'],
    ['a latin-1 byte', 'refs/heads/\xff'],
    ['not under refs/', 'heads/x'],
    ['HEAD', 'HEAD'],
    ['refs/ alone', 'refs/'],
    ['Refs/', 'Refs/heads/x'],
    ['too long', `refs/${'a'.repeat(251)}`],
  ])('refuses a ref with %s', (_why, ref) => {
    expect(parseReceivePackCommands(buf(pkt(Buffer.from(`${A} ${B} ${ref}\n`, 'latin1')), FLUSH_PKT))).toEqual({ kind: 'invalid', reason: BAD_REF });
  });

  it('takes a ref of up to 250 characters after refs/', () => {
    expect(parseReceivePackCommands(buf(line(A, B, `refs/${'a'.repeat(250)}`), FLUSH_PKT)).kind).toBe('commands');
  });

  it.each([
    ['a delimiter', '0001', 'unexpected delimiter in the ref-update commands'],
    ['a response end', '0002', 'unexpected delimiter in the ref-update commands'],
    ['a bad length', 'zzzz', 'a pkt-line length is not four hex digits'],
    ['a short length', '0003', 'a pkt-line length of 3 is out of range'],
  ])('refuses %s among the commands', (_why, packet, reason) => {
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/x', CAPS), packet, FLUSH_PKT))).toEqual({ kind: 'invalid', reason });
  });

  it('takes 1000 commands and refuses 1001', () => {
    const commands = (n: number) => Array.from({ length: n }, (_, i) => ({ oldOid: ZERO, newOid: B, ref: `refs/heads/tagbox/b${i}` }));
    const ok = parseReceivePackCommands(request(commands(1000)));
    expect(ok.kind === 'commands' && ok.commands.length).toBe(1000);
    expect(parseReceivePackCommands(request(commands(1001)))).toEqual({ kind: 'invalid', reason: 'more than 1000 refs in one push' });
    // refused as soon as the 1001st arrives, before any flush
    const partial = buf(...commands(1001).map((c, i) => line(c.oldOid, c.newOid, c.ref, i === 0 ? CAPS : undefined)));
    expect(parseReceivePackCommands(partial)).toEqual({ kind: 'invalid', reason: 'more than 1000 refs in one push' });
  });

  it('is incomplete without the flush', () => {
    expect(parseReceivePackCommands(Buffer.alloc(0))).toEqual({ kind: 'incomplete' });
    expect(parseReceivePackCommands(buf(line(A, B, 'refs/heads/x', CAPS)))).toEqual({ kind: 'incomplete' });
    expect(parseReceivePackCommands(buf(pkt(`shallow ${A}\n`)))).toEqual({ kind: 'incomplete' });
  });

  // Arbitrary valid requests: shallow lines, 0-6 commands, capabilities, then a pack.
  const oid = fc.constantFrom(ZERO, A, B);
  const ref = fc.stringMatching(/^refs\/(heads|tags)\/[A-Za-z0-9._/-]{1,20}$/);
  const command = fc.record({ oldOid: oid, newOid: oid, ref });
  type ValidRequest = { shallow: string[]; commands: RefCommand[]; caps: string[] | undefined; newline: boolean; pack: Buffer };
  const validRequest: fc.Arbitrary<ValidRequest> = fc.record({
    shallow: fc.array(oid, { maxLength: 2 }),
    commands: fc.array(command, { maxLength: 6 }),
    caps: fc.option(fc.array(fc.constantFrom('report-status', 'report-status-v2', 'side-band-64k', 'quiet', 'atomic', 'agent=git/2.39.5', 'push-options'), { maxLength: 4 }), { nil: undefined }),
    newline: fc.boolean(),
    pack: fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
  });
  const encode = (r: ValidRequest): { body: Buffer; head: number } => {
    const nl = r.newline ? '\n' : '';
    const head = buf(
      ...r.shallow.map((s) => pkt(`shallow ${s}${nl}`)),
      ...r.commands.map((c, i) => pkt(`${c.oldOid} ${c.newOid} ${c.ref}${i === 0 && r.caps ? `\0 ${r.caps.join(' ')}` : ''}${nl}`)),
      FLUSH_PKT,
    );
    return { body: buf(head, r.pack), head: head.length };
  };

  it('is incomplete at every split point before the flush ends, and complete from there on (property)', () => {
    fc.assert(
      fc.property(validRequest, (r) => {
        const { body, head } = encode(r);
        for (let n = 0; n < head; n++) expect(parseReceivePackCommands(body.subarray(0, n))).toEqual({ kind: 'incomplete' });
        const whole = { kind: 'commands', commands: r.commands, capabilities: r.commands.length > 0 && r.caps ? r.caps : [], length: head };
        for (let n = head; n <= body.length; n++) expect(parseReceivePackCommands(body.subarray(0, n))).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it('never throws, and a complete answer never claims more than it read (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)), validRequest.map((r) => encode(r).body)), fc.nat(), fc.integer({ min: 0, max: 255 }), (body, at, byte) => {
        const mutated = Buffer.from(body);
        if (mutated.length > 0) mutated[at % mutated.length] = byte;
        const r = parseReceivePackCommands(mutated);
        if (r.kind === 'commands') {
          expect(r.length).toBeLessThanOrEqual(mutated.length);
          expect(mutated.subarray(r.length - 4, r.length).toString('latin1')).toBe('0000');
          for (const c of r.commands) expect(c.ref).toMatch(/^refs\/[\x21-\x7e]+$/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('CommandsReader: a push head as it arrives', () => {
  const OID = 'a'.repeat(40);
  const request = Buffer.concat([
    ...Array<Buffer>(2000).fill(pkt(`shallow ${OID}\n`)),
    pkt(`${OID} ${'b'.repeat(40)} refs/heads/tagbox/x\0report-status side-band-64k\n`),
    FLUSH_PKT,
    Buffer.from('PACK....'),
  ]);

  it.each([1, 7, 64, 4096])('in %i-byte reads: the same answer as the whole, after a logarithmic number of parses', (size) => {
    const reader = new CommandsReader(1024 * 1024);
    let parsed: ReturnType<CommandsReader['push']> = { kind: 'incomplete' };
    for (let i = 0; i < request.length && parsed.kind === 'incomplete'; i += size) parsed = reader.push(request.subarray(i, i + size));
    // The body's end makes it parse what it has.
    if (parsed.kind === 'incomplete') parsed = reader.push(undefined);
    expect(parsed).toEqual(parseReceivePackCommands(request.subarray(0, reader.bytes)));
    expect(parsed.kind === 'commands' && parsed.commands.map((c) => c.ref)).toEqual(['refs/heads/tagbox/x']);
    // Each parse waits for the head to double: ~log2(bytes) parses, never one per read.
    expect(reader.parses).toBeLessThanOrEqual(Math.ceil(Math.log2(reader.bytes)) + 2);
  });

  it('parses what it has when the body ends, and past its maximum', () => {
    const ended = new CommandsReader(1024);
    ended.push(request.subarray(0, 3));
    expect(ended.parses).toBe(0);
    expect(ended.push(undefined)).toEqual({ kind: 'incomplete' });
    expect(ended.parses).toBe(1);
    const big = new CommandsReader(100);
    expect(big.push(request.subarray(0, 101)).kind).toBe('incomplete');
    expect(big.parses).toBe(1);
  });

  it('pushCapabilities reads the first command line even when what follows cannot be parsed', () => {
    const head = Buffer.concat([pkt(`shallow ${OID}\n`), pkt(`${OID} ${'b'.repeat(40)} refs/heads/caf\u00e9\0report-status side-band-64k\n`), Buffer.from('zzzz')]);
    expect(pushCapabilities(head)).toEqual(['report-status', 'side-band-64k']);
    expect(pushCapabilities(Buffer.from('00'))).toEqual([]);
  });
});

describe('refusalReport and parseReport', () => {
  const refs = [
    { ref: 'refs/heads/main', reason: 'Tagbox lets the agent push only to branches matching tagbox/*' },
    { ref: 'refs/heads/tagbox/x', reason: 'not pushed: another ref in this push was refused' },
    { ref: 'refs/tags/v1' },
  ];
  const expected = [
    { ref: 'refs/heads/main', ok: false, reason: 'Tagbox lets the agent push only to branches matching tagbox/*' },
    { ref: 'refs/heads/tagbox/x', ok: false, reason: 'not pushed: another ref in this push was refused' },
    { ref: 'refs/tags/v1', ok: false, reason: 'refused by Tagbox' },
  ];

  it('without side-band: a plain report-status, every ref ng with its reason', () => {
    const report = refusalReport(refs, ['report-status', 'quiet'], 'Tagbox refused this push.');
    expect(report.toString('latin1')).toBe(
      '000eunpack ok\n' +
        '0055ng refs/heads/main Tagbox lets the agent push only to branches matching tagbox/*\n' +
        '004cng refs/heads/tagbox/x not pushed: another ref in this push was refused\n' +
        '0026ng refs/tags/v1 refused by Tagbox\n' +
        '0000',
    );
    expect(parseReport(report, false)).toEqual(expected);
    expect(RECEIVE_PACK_RESULT_TYPE).toBe('application/x-git-receive-pack-result');
  });

  it.each([['side-band-64k'], ['side-band']])('with %s: the message on band 2, the report on band 1, then a flush', (cap) => {
    const report = refusalReport(refs, ['report-status', cap, 'agent=git/2.39.5'], 'Tagbox refused this push:\nbecause.');
    expect(parseReport(report, true)).toEqual(expected);
    const first = readPacket(report, 0);
    if (first.kind !== 'data') throw new Error('expected data');
    expect(first.payload.toString('latin1')).toBe('\x02Tagbox refused this push: because.\n');
    const second = readPacket(report, first.next);
    if (second.kind !== 'data') throw new Error('expected data');
    expect(second.payload[0]).toBe(1);
    expect(parseReport(second.payload.subarray(1), false)).toEqual(expected);
    expect(readPacket(report, second.next)).toEqual({ kind: 'flush', next: report.length });
  });

  it('side-band with no refs: unpack ok and a flush, parsed as nothing refused', () => {
    expect(parseReport(refusalReport([], ['side-band-64k'], 'm'), true)).toEqual([]);
    expect(parseReport(refusalReport([], [], 'm'), false)).toEqual([]);
  });

  it('keeps each reason and the message on one line, at most 400 characters', () => {
    const report = refusalReport([{ ref: 'refs/heads/x', reason: 'one\ntwo\r\nthree\0four' }, { ref: 'refs/heads/y', reason: 'r'.repeat(1000) }], [], 'm');
    expect(parseReport(report, false)).toEqual([
      { ref: 'refs/heads/x', ok: false, reason: 'one two three four' },
      { ref: 'refs/heads/y', ok: false, reason: 'r'.repeat(400) },
    ]);
    const banded = refusalReport([], ['side-band-64k'], `${'m'.repeat(1000)}\n0000`);
    const first = readPacket(banded, 0);
    expect(first.kind === 'data' && first.payload.toString('latin1')).toBe(`\x02${'m'.repeat(400)}\n`);
  });

  it('a report too big for one band-1 packet is split and still parses back', () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ ref: `refs/heads/tagbox/${'b'.repeat(100)}${i}`, reason: `reason ${i} ${'x'.repeat(200)}` }));
    const report = refusalReport(many, ['side-band-64k'], 'refused');
    expect(report.length).toBeGreaterThan(3 * MAX_PKT_LENGTH);
    expect(parseReport(report, true)).toEqual(many.map((r) => ({ ref: r.ref, ok: false, reason: r.reason })));
  });

  it('round-trips any refs and reasons (property)', () => {
    const ref = fc.stringMatching(/^refs\/[\x21-\x7e]{1,100}$/);
    const reason = fc.option(fc.string({ unit: 'binary', maxLength: 500 }), { nil: undefined });
    fc.assert(
      fc.property(fc.array(fc.record({ ref, reason }), { maxLength: 20 }), fc.boolean(), fc.string(), (rs, band, message) => {
        const parsed = parseReport(refusalReport(rs, band ? ['side-band-64k'] : [], message), band);
        expect(parsed?.map((p) => [p.ref, p.ok])).toEqual(rs.map((r) => [r.ref, false]));
        for (const [i, p] of parsed!.entries()) {
          expect(p.reason).not.toMatch(/[\r\n\0]/);
          expect(Buffer.byteLength(p.reason ?? '', 'latin1')).toBeLessThanOrEqual(400 * 2);
          const given = rs[i]!.reason;
          if (given === undefined) expect(p.reason).toBe('refused by Tagbox');
          else if (!/[\r\n\0]/.test(given) && given.length <= 400 && /^[\x20-\x7e]*$/.test(given)) expect(p.reason).toBe(given);
        }
      }),
    );
  });

  it('unreadablePushReport: the reason on the unpack line, no refs', () => {
    const report = unreadablePushReport('Tagbox could not read\nthis push');
    expect(report.toString('latin1')).toBe('002bunpack Tagbox could not read this push\n0000');
    expect(parseReport(report, false)).toEqual([]);
  });

  // As receive-pack answers (report-status-v2, side-band-64k): hook output on band 2,
  // the report on band 1 split at an odd place, option lines, an ng without a reason.
  const upstream = (() => {
    const report = buf(
      pkt('unpack ok\n'),
      pkt('ok refs/heads/tagbox/a\n'),
      pkt('option refname refs/heads/tagbox/a-renamed\n'),
      pkt(`option old-oid ${A}\n`),
      pkt('ok refs/heads/tagbox/b\n'),
      pkt('ng refs/heads/main protected branch hook declined\n'),
      pkt('ng refs/heads/odd\n'),
      FLUSH_PKT,
    );
    return buf(
      sideband(2, Buffer.from('Resolving deltas: 100% (3/3)\r')),
      sideband(2, Buffer.from('remote: GH006: Protected branch update failed\n')),
      sideband(1, report.subarray(0, 17)),
      sideband(3, Buffer.from('')),
      sideband(2, Buffer.from('more progress\n')),
      sideband(1, report.subarray(17)),
      FLUSH_PKT,
    );
  })();

  it('reads an upstream report with ok and ng, through progress on band 2', () => {
    expect(parseReport(upstream, true)).toEqual([
      { ref: 'refs/heads/tagbox/a', ok: true },
      { ref: 'refs/heads/tagbox/b', ok: true },
      { ref: 'refs/heads/main', ok: false, reason: 'protected branch hook declined' },
      { ref: 'refs/heads/odd', ok: false },
    ]);
  });

  it('reads a failed unpack report', () => {
    const report = buf(pkt('unpack index-pack abnormal exit\n'), pkt('ng refs/heads/tagbox/a unpacker error\n'), FLUSH_PKT);
    expect(parseReport(report, false)).toEqual([{ ref: 'refs/heads/tagbox/a', ok: false, reason: 'unpacker error' }]);
  });

  it.each([
    ['an empty body', Buffer.alloc(0), false],
    ['an empty body (side-band)', Buffer.alloc(0), true],
    ['text', buf('hello world'), false],
    ['a JSON error', buf('{"message":"Bad credentials"}'), true],
    ['an HTML page', buf('<!DOCTYPE html><html></html>'), false],
    ['a report without unpack', buf(pkt('ok refs/heads/x\n'), FLUSH_PKT), false],
    ['a flush alone', FLUSH_PKT, false],
    ['a report cut before its flush', buf(pkt('unpack ok\n'), pkt('ok refs/heads/x\n')), false],
    ['a report with a bad length', buf(pkt('unpack ok\n'), 'zzzz'), false],
    ['a report ended by a delimiter', buf(pkt('unpack ok\n'), '0001'), false],
    ['a side-band stream cut short', upstream.subarray(0, upstream.length - 4), true],
    ['an unknown band', buf(pkt(Buffer.from([5, 0x61])), FLUSH_PKT), true],
    ['an empty side-band packet', buf('0004', FLUSH_PKT), true],
    ['errors only on band 3', buf(sideband(3, Buffer.from('fatal: nope\n')), FLUSH_PKT), true],
    ['a plain report read as side-band', buf(pkt('unpack ok\n'), pkt('ok refs/heads/x\n'), FLUSH_PKT), true],
    ['a side-band stream read as plain', refusalReport([{ ref: 'refs/heads/x' }], ['side-band-64k'], 'm'), false],
    ['band 1 with no report in it', buf(sideband(1, Buffer.from('garbage')), FLUSH_PKT), true],
  ])('is undefined for %s', (_what, body, band) => {
    expect(parseReport(body, band)).toBeUndefined();
  });

  it('never throws on arbitrary bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (u, band) => {
        const r = parseReport(Buffer.from(u), band);
        if (r) for (const s of r) expect(typeof s.ref).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });
});


/**
 * Real git on both ends, without an HTTP server: `git push ext::…` runs a tiny
 * relay that connects to a socket of this test, which either answers as the
 * proxy does when it refuses (advertisement, then refusalReport), or sits
 * between git and a real `git receive-pack` and records both directions.
 * The smart-HTTP framing of a push is the same pkt-line stream.
 */
describe('with real git (git push over ext::, git receive-pack)', () => {
  let dir: string;
  let work: string;
  let bare: string;
  let sock: string;
  let relay: string;
  let server: Server;
  let base: string;
  let handler: (s: Socket) => void = () => undefined;

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
  };
  const git = (args: string[], cwd: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('git', args, { cwd, env: { ...env, HOME: dir } }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
  const push = (...refspecs: string[]) => git(['-c', 'protocol.ext.allow=always', 'push', '--porcelain', `ext::${process.execPath} ${relay} ${sock}`, ...refspecs], work);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tagbox-receive-pack-'));
    work = join(dir, 'work');
    bare = join(dir, 'bare.git');
    sock = join(dir, 'sock');
    relay = join(dir, 'relay.mjs');
    // Half-open both ways: git closes its side after the pack, then reads the report.
    writeFileSync(relay, "import { connect } from 'node:net';\nconst s = connect({ path: process.argv[2], allowHalfOpen: true });\nprocess.stdin.pipe(s);\ns.pipe(process.stdout);\n");
    server = createServer({ allowHalfOpen: true }, (s) => handler(s));
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    for (const args of [['init', '-q', '-b', 'main', work], ['init', '-q', '--bare', '-b', 'main', bare]]) expect((await git(args, dir)).code).toBe(0);
    expect((await git(['commit', '-q', '--allow-empty', '-m', 'base'], work)).code).toBe(0);
    expect((await git(['push', '-q', bare, 'main'], work)).code).toBe(0);
    base = (await git(['rev-parse', 'HEAD'], work)).stdout.trim();
    expect((await git(['commit', '-q', '--allow-empty', '-m', 'agent work'], work)).code).toBe(0);
    writeFileSync(join(bare, 'hooks', 'update'), '#!/bin/sh\nif [ "$1" = refs/heads/blocked ]; then echo "no pushes to blocked"; exit 1; fi\n');
    chmodSync(join(bare, 'hooks', 'update'), 0o755);
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Answers as the proxy does: an advertisement, then (once the commands are in) `answer`; the pack is drained. */
  function refusing(capabilities: string, answer: (commands: RefCommand[], caps: string[]) => Buffer, seen: { requests: Buffer[] }) {
    return (s: Socket) => {
      s.write(buf(pkt(`${base} refs/heads/main\0${capabilities}\n`), FLUSH_PKT));
      const chunks: Buffer[] = [];
      let answered = false;
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        if (answered) return;
        const r = parseReceivePackCommands(Buffer.concat(chunks));
        if (r.kind === 'incomplete') return;
        answered = true;
        s.end(r.kind === 'commands' ? answer(r.commands, r.capabilities) : unreadablePushReport(`Tagbox could not read this push's ref updates: ${r.reason}`, pushCapabilities(Buffer.concat(chunks))));
      });
      s.on('end', () => seen.requests.push(Buffer.concat(chunks)));
    };
  }

  const proxyAnswer = (commands: RefCommand[], caps: string[]) => {
    const verdict = judgePush(commands, 'tagbox/*', undefined);
    const message = `Tagbox refused this push: ${verdict.refs.find((r) => r.reason && !r.reason.startsWith('not pushed'))?.reason ?? 'refused'}.`;
    return refusalReport(verdict.refs, caps, message);
  };

  it.each([
    ['with side-band-64k', 'report-status side-band-64k delete-refs ofs-delta agent=tagbox-test'],
    ['without side-band', 'report-status delete-refs ofs-delta agent=tagbox-test'],
  ])('git prints each ref\'s refusal and the message (%s)', async (what, capabilities) => {
    const seen = { requests: [] as Buffer[] };
    handler = refusing(capabilities, proxyAnswer, seen);
    const r = await push('HEAD:refs/heads/tagbox/ok', 'HEAD:refs/heads/main', ':refs/heads/old');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('!\tHEAD:refs/heads/tagbox/ok\t[remote rejected] (not pushed: another ref in this push was refused)');
    expect(r.stdout).toContain('!\tHEAD:refs/heads/main\t[remote rejected] (Tagbox lets the agent push only to branches matching tagbox/*)');
    expect(r.stdout).toContain('!\t:refs/heads/old\t[remote rejected] (Tagbox does not let the agent delete branches)');
    if (what === 'with side-band-64k') expect(r.stderr).toContain('remote: Tagbox refused this push: Tagbox lets the agent push only to branches matching tagbox/*.');
    expect(r.stderr).not.toMatch(/protocol error|hung up|fatal/);
    // What git sent parses as what it asked for.
    const sent = parseReceivePackCommands(seen.requests[0]!);
    // (git sends the refs the remote has first)
    expect(sent.kind === 'commands' && sent.commands.map((c) => c.ref).sort()).toEqual(['refs/heads/main', 'refs/heads/old', 'refs/heads/tagbox/ok']);
    expect(sent.kind === 'commands' && sent.capabilities).toContain('report-status');
    expect(sent.kind === 'commands' && sent.capabilities.includes('side-band-64k')).toBe(what === 'with side-band-64k');
  });

  it('git\'s own request, between it and a real receive-pack: commands, then the pack; and the real report parses', async () => {
    let request = Buffer.alloc(0);
    let response = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      handler = (s: Socket) => {
        const child = spawn('git', ['receive-pack', bare], { env: { ...env, HOME: dir } });
        const req: Buffer[] = [];
        const res: Buffer[] = [];
        s.on('data', (d: Buffer) => req.push(d));
        child.stdout.on('data', (d: Buffer) => res.push(d));
        s.pipe(child.stdin);
        child.stdout.pipe(s);
        child.on('close', () => {
          request = Buffer.concat(req);
          response = Buffer.concat(res);
          resolve();
        });
      };
    });
    const r = await push('HEAD:refs/heads/tagbox/ok', 'HEAD:refs/heads/blocked', 'HEAD:refs/heads/main');
    await done;
    expect(r.stderr).toContain('remote: no pushes to blocked');
    expect(r.stdout).toContain('!\tHEAD:refs/heads/blocked\t[remote rejected] (hook declined)');

    const sent = parseReceivePackCommands(request);
    if (sent.kind !== 'commands') throw new Error(`git's request did not parse: ${JSON.stringify(sent)}`);
    // git sends the refs the remote has first, then the new ones in the order given
    expect(sent.commands.map((c) => [c.ref, c.oldOid === ZERO ? 'create' : 'update'])).toEqual([
      ['refs/heads/main', 'update'],
      ['refs/heads/tagbox/ok', 'create'],
      ['refs/heads/blocked', 'create'],
    ]);
    expect(sent.commands[0]!.oldOid).toBe(base);
    expect(sent.capabilities).toEqual(expect.arrayContaining(['side-band-64k', 'report-status-v2']));
    expect(request.subarray(sent.length, sent.length + 4).toString('latin1')).toBe('PACK');

    // The response: receive-pack's advertisement, then its report.
    let offset = 0;
    for (;;) {
      const p = readPacket(response, offset);
      if (p.kind === 'incomplete' || p.kind === 'invalid') throw new Error('bad advertisement');
      offset = p.next;
      if (p.kind === 'flush') break;
    }
    expect(parseReport(response.subarray(offset), true)).toEqual([
      { ref: 'refs/heads/main', ok: true },
      { ref: 'refs/heads/tagbox/ok', ok: true },
      { ref: 'refs/heads/blocked', ok: false, reason: 'hook declined' },
    ]);
    // and git printed the same
    expect(r.stdout).toContain('*\tHEAD:refs/heads/tagbox/ok\t[new branch]');
  });

  it('git shows why a push it could send was unreadable (a non-ASCII branch name)', async () => {
    const seen = { requests: [] as Buffer[] };
    handler = refusing('report-status side-band-64k delete-refs ofs-delta agent=tagbox-test', proxyAnswer, seen);
    const r = await push('HEAD:refs/heads/tagbox/café');
    expect(parseReceivePackCommands(seen.requests[0]!)).toEqual({ kind: 'invalid', reason: 'a ref-update command names a ref that is not refs/… in printable ASCII' });
    expect(r.stderr).not.toContain('bad band');
    expect(r.stderr).toContain('not refs/… in printable ASCII');
  });
});
