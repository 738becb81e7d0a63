import { describe, expect, it } from 'vitest';
import { BlockedThrottle, DropLedger } from '../../src/proxy/blocked-feed.js';

/** The feed's throttle and drop counting, on a clock the test moves by hand. */
const ev = (session: string, host: string, port = 443) => ({ session, host, port });

describe('BlockedThrottle', () => {
  it('lets one event per session, host and port through per second', () => {
    const t = new BlockedThrottle();
    expect(t.admit(ev('s1', 'a.test'), 0)).toBe(true);
    expect(t.admit(ev('s1', 'a.test'), 1)).toBe(false);
    expect(t.admit(ev('s1', 'a.test'), 999)).toBe(false);
    // Another port, host or session is another key.
    expect(t.admit(ev('s1', 'a.test', 80), 999)).toBe(true);
    expect(t.admit(ev('s1', 'b.test'), 999)).toBe(true);
    expect(t.admit(ev('s2', 'a.test'), 999)).toBe(true);
    expect(t.admit(ev('s1', 'a.test'), 1000)).toBe(true);
    expect(t.admit(ev('s1', 'a.test'), 1999)).toBe(false);
  });

  it('lets at most 50 events per session through per window, whatever the hosts', () => {
    const t = new BlockedThrottle();
    const admitted = Array.from({ length: 80 }, (_, i) => t.admit(ev('s1', `h${i}.test`), i)).filter(Boolean).length;
    expect(admitted).toBe(50);
    // Other sessions keep their own allowance.
    expect(t.admit(ev('s2', 'h0.test'), 80)).toBe(true);
    // A host refused for the session's cap was not counted as sent: it may go once the window turns.
    expect(t.admit(ev('s1', 'h79.test'), 999)).toBe(false);
    expect(t.admit(ev('s1', 'h79.test'), 1000)).toBe(true);
  });

  it('a key colliding in text is still its own key', () => {
    const t = new BlockedThrottle();
    expect(t.admit(ev('s|1', 'a.test'), 0)).toBe(true);
    expect(t.admit(ev('s', '1|a.test'), 0)).toBe(true);
  });

  it('stays small under a flood of distinct hosts', () => {
    const t = new BlockedThrottle();
    for (let i = 0; i < 100_000; i++) t.admit(ev('s1', `h${i}.test`), i / 10);
    // 10 s of flood: only what the last second let through is remembered (plus the session's window).
    expect(t.size).toBeLessThanOrEqual(2 * 50 + 1);
  });

  it('honours other limits', () => {
    const t = new BlockedThrottle({ perKeyMs: 10, perSession: 2, windowMs: 100 });
    expect([t.admit(ev('s', 'a'), 0), t.admit(ev('s', 'b'), 0), t.admit(ev('s', 'c'), 0)]).toEqual([true, true, false]);
    expect(t.admit(ev('s', 'a'), 50)).toBe(false);
    expect(t.admit(ev('s', 'a'), 100)).toBe(true);
  });
});

describe('DropLedger', () => {
  it('counts per session and reports at most once per interval', () => {
    const l = new DropLedger(1000);
    expect(l.due(0)).toBeUndefined();
    expect(l.take(0)).toEqual([]);
    l.add('s1');
    l.add('s1');
    l.add('s2', 5);
    expect(l.due(0)).toBe(0);
    expect(l.take(0)).toEqual([
      { session: 's1', count: 2 },
      { session: 's2', count: 5 },
    ]);
    expect(l.due(10)).toBeUndefined();
    l.add('s1');
    expect(l.due(10)).toBe(990);
    expect(l.take(10)).toEqual([]);
    expect(l.take(999)).toEqual([]);
    l.add('s1');
    expect(l.take(1000)).toEqual([{ session: 's1', count: 2 }]);
    expect(l.take(5000)).toEqual([]);
  });
});
