import { describe, expect, it } from 'vitest';
import { forwardableRawHeaders } from '../../src/proxy/forward.js';

/** The raw response-header filter the forwarding path uses (pure). */
const raw = (...pairs: string[]) => pairs.map((p) => Buffer.from(p, 'latin1'));

describe('forwardableRawHeaders', () => {
  it('keeps the upstream order, spelling and repeats (two Set-Cookie stay two)', () => {
    expect(forwardableRawHeaders(raw('Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'X-Thing', 'y', 'set-cookie', 'b=2'))).toEqual([
      'Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'X-Thing', 'y', 'set-cookie', 'b=2',
    ]);
  });

  it('drops hop-by-hop headers, every Proxy-* header, and what Connection names, in any case', () => {
    const out = forwardableRawHeaders(
      raw(
        'Connection', 'keep-alive, X-Secret-Hop',
        'CONNECTION', 'x-other',
        'Keep-Alive', 'timeout=5',
        'Transfer-Encoding', 'chunked',
        'Upgrade', 'h2c',
        'Trailer', 'x',
        'TE', 'trailers',
        'Proxy-Authenticate', 'Basic',
        'proxy-anything', 'z',
        'x-secret-hop', 'leak',
        'X-Other', 'leak too',
        'Content-Length', '5',
      ),
    );
    expect(out).toEqual(['Content-Length', '5']);
  });

  it('passes a response Host header (it is no hop-by-hop header of a response) and latin1 bytes unchanged', () => {
    expect(forwardableRawHeaders(raw('Host', 'h', 'X-Latin', 'caf\xe9'))).toEqual(['Host', 'h', 'X-Latin', 'caf\xe9']);
  });

  it('an empty or comma-only Connection names nothing', () => {
    expect(forwardableRawHeaders(raw('Connection', ' , ', 'X-A', '1'))).toEqual(['X-A', '1']);
  });
});
