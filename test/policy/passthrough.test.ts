import { describe, expect, it } from 'vitest';
import { renderInjection } from '../../src/policy/inject.js';
import { isReadOnlyMethod } from '../../src/policy/methods.js';
import { compileHostMatcher } from '../../src/policy/passthrough.js';

describe('compileHostMatcher (proxy.passthrough)', () => {
  const m = compileHostMatcher(['pinned.example.com', '*.bank.example', { host: 'db.example.com', ports: [5432] }, '10.0.0.0/8']);

  it.each([
    ['pinned.example.com', 443, 'pinned.example.com'],
    ['PINNED.example.com.', 80, 'pinned.example.com'],
    ['pinned.example.com', 8443, undefined],
    ['x.pinned.example.com', 443, undefined],
    ['www.bank.example', 443, '*.bank.example'],
    ['bank.example', 443, undefined],
    ['evil-bank.example', 443, undefined],
    ['db.example.com', 5432, 'db.example.com'],
    ['db.example.com', 443, undefined],
    ['10.2.3.4', 443, '10.0.0.0/8'],
    ['0x0a.1', 443, '10.0.0.0/8'],
    ['not a host', 443, undefined],
  ])('%s:%s -> %s', (host, port, expected) => {
    expect(m.match(host, port)).toBe(expected);
  });

  it('rejects bad patterns naming the setting', () => {
    expect(() => compileHostMatcher(['ok.com', '*'], 'tagbox.yaml: proxy.passthrough')).toThrow(/^tagbox\.yaml: proxy\.passthrough\[1\]: "\*" alone/);
  });
});

describe('isReadOnlyMethod', () => {
  it('is exactly GET, HEAD, OPTIONS, case-sensitive', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS']) expect(isReadOnlyMethod(m)).toBe(true);
    for (const m of ['get', 'Get', 'head', 'options', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'CONNECT', 'PROPFIND', 'GET ', '']) expect(isReadOnlyMethod(m)).toBe(false);
  });
});

describe('renderInjection', () => {
  it('renders a header template', () => {
    expect(renderInjection({ header: 'Authorization', value: 'Bearer {{secret}}' }, 'tok')).toEqual({ name: 'Authorization', value: 'Bearer tok' });
    expect(renderInjection({ header: 'X-Key', value: '{{secret}}' }, '$&$1')).toEqual({ name: 'X-Key', value: '$&$1' });
  });

  it('renders basic auth', () => {
    expect(renderInjection({ basic: { username: 'x-access-token' } }, 'p:w')).toEqual({
      name: 'Authorization',
      value: `Basic ${Buffer.from('x-access-token:p:w').toString('base64')}`,
    });
  });

  it('refuses a secret that would split the header', () => {
    expect(() => renderInjection({ header: 'A', value: '{{secret}}' }, 'a\r\nX-Evil: 1')).toThrow(/cannot appear in an HTTP header/);
  });
});
