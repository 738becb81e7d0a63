import { describe, expect, it } from 'vitest';
import { EventHub } from '../../src/sessions/event-hub.js';

describe('EventHub', () => {
  it('wakes a session\'s readers and every-session readers alike, until they unsubscribe', () => {
    const hub = new EventHub();
    const one: string[] = [];
    const all: string[] = [];
    const offOne = hub.subscribe('s1', () => one.push('s1'));
    const offAll = hub.subscribeAll((id) => all.push(id));
    hub.notify('s1');
    hub.notify('s2');
    expect(one).toEqual(['s1']);
    expect(all).toEqual(['s1', 's2']);
    offOne();
    offAll();
    hub.notify('s1');
    expect(one).toEqual(['s1']);
    expect(all).toEqual(['s1', 's2']);
  });

  it('keeps one function subscribed twice to all sessions until both are undone', () => {
    const hub = new EventHub();
    const seen: string[] = [];
    const fn = (id: string) => seen.push(id);
    const off1 = hub.subscribeAll(fn);
    hub.subscribeAll(fn);
    off1();
    hub.notify('s1');
    expect(seen).toEqual(['s1']);
  });
});
