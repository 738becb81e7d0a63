import { describe, expect, it } from 'vitest';
import { ChannelPacer, type Clock } from '../../../src/surfaces/slack/channel-pacer.js';

/** Virtual time: a sleep moves it on to its wake-up time (never back). */
function virtualClock(): Clock & { t: number } {
  const clock = {
    t: 0,
    now: () => clock.t,
    sleep: async (ms: number) => {
      const wake = clock.t + ms;
      await Promise.resolve();
      clock.t = Math.max(clock.t, wake);
    },
  };
  return clock;
}

async function times(clock: Clock & { t: number }, calls: Array<() => Promise<void>>): Promise<number[]> {
  const at: number[] = [];
  for (const call of calls) {
    await call();
    at.push(clock.t);
  }
  return at;
}

describe('ChannelPacer', () => {
  it('lets one new message per second through in a channel', async () => {
    const clock = virtualClock();
    const pacer = new ChannelPacer(1, clock);
    expect(await times(clock, [0, 1, 2, 3].map(() => () => pacer.newMessage('C1')))).toEqual([0, 1000, 2000, 3000]);
  });

  it('keeps channels apart', async () => {
    const clock = virtualClock();
    const pacer = new ChannelPacer(1, clock);
    await pacer.newMessage('C1');
    await pacer.newMessage('C2');
    expect(clock.t).toBe(0);
    await pacer.newMessage('C1');
    expect(clock.t).toBe(1000);
  });

  it('follows messagesPerSecond', async () => {
    const clock = virtualClock();
    const pacer = new ChannelPacer(4, clock);
    expect(await times(clock, [0, 1, 2].map(() => () => pacer.newMessage('C1')))).toEqual([0, 250, 500]);
    const slow = new ChannelPacer(0.5, virtualClock());
    expect(slow.waitFor('C1')).toBe(0);
    await slow.newMessage('C1');
    expect(slow.waitFor('C1')).toBe(2000);
  });

  it('does not wait after a quiet spell', async () => {
    const clock = virtualClock();
    const pacer = new ChannelPacer(1, clock);
    await pacer.newMessage('C1');
    clock.t = 5000;
    await pacer.newMessage('C1');
    expect(clock.t).toBe(5000);
  });

  it('changes one message at most once a second, whatever the message rate', async () => {
    const clock = virtualClock();
    const pacer = new ChannelPacer(10, clock);
    expect(await times(clock, [0, 1, 2].map(() => () => pacer.change('C1', '1.0001')))).toEqual([0, 1000, 2000]);
    // Another message of the channel, and new messages, are not held up by it.
    await pacer.change('C1', '1.0002');
    await pacer.newMessage('C1');
    expect(clock.t).toBe(2000);
  });

  it('queues concurrent callers in order, each in its own slot', async () => {
    const clock = virtualClock();
    const pacer = new ChannelPacer(1, clock);
    const order: number[] = [];
    await Promise.all([0, 1, 2].map((i) => pacer.newMessage('C1').then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2]);
    expect(pacer.waitFor('C1')).toBe(3000 - clock.t);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new ChannelPacer(0)).toThrow(/slack.messagesPerSecond: expected a positive number, got 0/);
  });
});
