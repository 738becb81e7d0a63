/**
 * The SSRF guard's question, asked after a name is resolved and before the
 * socket is opened: may the proxy dial this address? Pure: the caller resolves
 * once, asks here, then dials exactly the address it asked about.
 */
import { classifyAddress, type AddressClass } from './address-class.js';
import type { CompiledCidrs } from './cidr.js';
import { formatIp, parseIpLiteral, sameIp, type IpAddress } from './ip.js';

/** Classes a covering CIDR never unlocks: only an entry naming the exact address does. */
const EXACT_ONLY: ReadonlySet<AddressClass> = new Set(['metadata', 'loopback']);

export interface ForbiddenAddressOptions {
  /** The policy's IP and CIDR entries (`EgressPolicy.addresses`). */
  readonly allowed: CompiledCidrs;
  /** The proxy's own addresses (listeners, interfaces); any literal form. */
  readonly selfAddresses: readonly string[];
}

/**
 * Returns a one-line reason when `address` must not be dialled, or null.
 *
 * Refused: every non-public class (loopback, private, link-local, CGNAT,
 * multicast, broadcast, reserved, documentation, metadata, unspecified, and
 * IPv6 forms embedding such an IPv4) and the proxy's own addresses — unless
 * an admin listed the address. Fail-closed refinements:
 * - the unspecified address (0.0.0.0, ::) is never dialled: it reaches the local host;
 * - cloud metadata, loopback (all of 127.0.0.0/8, ::1, and every IPv6 form
 *   embedding them) and the proxy's own addresses need the exact address as
 *   an entry; a block such as 169.254.0.0/16 or 127.0.0.0/8 does not unlock
 *   them (a loopback address reaches every service bound to all interfaces of
 *   the proxy's host);
 * - an entry matches the address dialled, not an IPv4 embedded in it.
 * Text that is not an IP literal is refused.
 */
export function isForbiddenAddress(address: string | IpAddress, options: ForbiddenAddressOptions): string | null {
  const ip = typeof address === 'string' ? parseIpLiteral(address) : address;
  if (!ip) return `"${String(address)}" is not an IP address`;
  const text = formatIp(ip);
  const listed = options.allowed.match(ip);

  for (const self of options.selfAddresses) {
    const own = parseIpLiteral(self);
    if (own && sameIp(own, ip)) {
      return listed?.exact ? null : `address ${text} is the proxy's own address`;
    }
  }

  const c = classifyAddress(ip);
  if (c.class === 'public') return null;
  if (c.class === 'unspecified' && !c.embedded) return `address ${text} is unspecified (${c.range})`;
  const exactOnly = EXACT_ONLY.has(c.class);
  if (listed && (listed.exact || !exactOnly)) return null;

  const what = c.class === 'metadata' ? 'a cloud metadata address' : c.class;
  const range = c.range ? ` (${c.range})` : '';
  const hint = exactOnly ? '; only an exact IP entry allows it, never a covering CIDR' : '; list the IP or CIDR in a bundle to allow it';
  if (c.embedded) {
    return `address ${text} embeds ${c.embedded.address} via ${c.embedded.via}, which is ${what}${range}${hint}`;
  }
  return `address ${text} is ${what}${range}${hint}`;
}
