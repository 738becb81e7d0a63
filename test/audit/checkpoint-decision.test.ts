import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyIdOf, signCheckpoint, type Checkpoint } from '../../src/audit/checkpoint.js';
import { decideCheckpoint, type CheckpointState } from '../../src/audit/checkpoint-decision.js';

/** The writer's decision, pure: when may the head be signed without laundering what came before? */
const ours = generateKeyPairSync('ed25519');
const keyId = keyIdOf(ours.publicKey);
const trusted = new Map([[keyId, ours.publicKey]]);
const theirs = generateKeyPairSync('ed25519');

const h = (n: number) => n.toString(16).padStart(64, '0');
const cp = (seq: number, hash = h(seq), kind: 'head' | 'anchor' = 'head', key = ours.privateKey, id = keyId): Checkpoint =>
  signCheckpoint(key, { kind, seq, hash, ts: '2026-01-01T00:00:00.000Z', keyId: id });
const state = (s: Partial<CheckpointState> & { events?: number[] }): CheckpointState => ({
  ...s,
  hashes: new Map((s.events ?? []).map((seq) => [seq, h(seq)])),
});
const decide = (s: CheckpointState, known?: Checkpoint) => decideCheckpoint(s, known, trusted, keyId);

describe('decideCheckpoint', () => {
  it('signs the head of a log nobody signed yet, and nothing for an empty log', () => {
    expect(decide(state({ head: { seq: 3, hash: h(3) } }))).toEqual({ action: 'sign', head: { seq: 3, hash: h(3) } });
    expect(decide(state({}))).toEqual({ action: 'none' });
  });

  it('signs what follows the newest checkpoint, and nothing when it covers the head', () => {
    expect(decide(state({ head: { seq: 9, hash: h(9) }, latest: cp(5), events: [5] }), cp(5))).toMatchObject({ action: 'sign', head: { seq: 9 } });
    expect(decide(state({ head: { seq: 5, hash: h(5) }, latest: cp(5), events: [5] }))).toMatchObject({ action: 'none' });
  });

  it('refuses when the chain was rewritten under the newest checkpoint', () => {
    const s = state({ head: { seq: 9, hash: h(9) }, latest: cp(5) });
    s.hashes = new Map([[5, h(555)]]);
    expect(decide(s)).toMatchObject({ action: 'refuse', problem: expect.stringContaining('event 5 no longer matches its signed checkpoint') });
  });

  it('refuses when the tail the newest checkpoint covered is gone', () => {
    expect(decide(state({ head: { seq: 4, hash: h(4) }, latest: cp(5) }))).toMatchObject({ action: 'refuse', problem: expect.stringContaining('beyond the last event (4)') });
  });

  it('refuses a newest checkpoint forged with another key, or under our key id', () => {
    const forged = cp(5, h(5), 'head', theirs.privateKey, keyIdOf(theirs.publicKey));
    expect(decide(state({ head: { seq: 9, hash: h(9) }, latest: forged, events: [5] }))).toMatchObject({ action: 'refuse', problem: expect.stringContaining('same audit signing key') });
    const spoofed = cp(5, h(5), 'head', theirs.privateKey, keyId);
    expect(decide(state({ head: { seq: 9, hash: h(9) }, latest: spoofed, events: [5] }))).toMatchObject({ action: 'refuse', problem: expect.stringContaining('does not verify') });
  });

  it('refuses when a checkpoint known here is missing from the database (rows deleted)', () => {
    expect(decide(state({ head: { seq: 9, hash: h(9) }, latest: cp(5), events: [5, 8] }), cp(8))).toMatchObject({
      action: 'refuse',
      problem: expect.stringContaining('the newest checkpoint known here (event 8) is missing from the database'),
    });
    expect(decide(state({ head: { seq: 9, hash: h(9) }, events: [8] }), cp(8))).toMatchObject({ action: 'refuse' });
  });

  it('compares a known checkpoint with the chain, unless retention pruned it', () => {
    const s = state({ head: { seq: 9, hash: h(9) }, latest: cp(8), events: [8] });
    s.hashes = new Map([[8, h(8)], [6, h(666)]]);
    expect(decide(s, cp(6))).toMatchObject({ action: 'refuse', problem: expect.stringContaining('event 6 no longer matches') });
    const pruned = state({ head: { seq: 9, hash: h(9) }, anchor: { seq: 7, hash: h(7) }, latest: cp(7, h(7), 'anchor') });
    expect(decide(pruned, cp(6))).toMatchObject({ action: 'sign', head: { seq: 9 } });
  });

  it('checks an anchor checkpoint against the anchor', () => {
    const moved = state({ head: { seq: 9, hash: h(9) }, anchor: { seq: 7, hash: h(7) }, latest: cp(6, h(6), 'anchor') });
    expect(decide(moved)).toMatchObject({ action: 'refuse', problem: expect.stringContaining('the anchor was moved') });
  });

  it('adopts an unsigned anchor only on the very first checkpoint', () => {
    const legacy = state({ head: { seq: 9, hash: h(9) }, anchor: { seq: 4, hash: h(4) } });
    expect(decide(legacy)).toEqual({ action: 'sign', head: { seq: 9, hash: h(9) }, adoptAnchor: { seq: 4, hash: h(4) } });
    // Once anything was signed (here: known to this host), an unsigned anchor is never adopted.
    expect(decide(legacy, cp(3))).toMatchObject({ action: 'refuse' });
  });
});
