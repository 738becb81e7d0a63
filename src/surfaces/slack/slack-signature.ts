import { createHmac, timingSafeEqual } from 'node:crypto';

/** Slack's replay window: a request signed more than this long ago (or ahead) is refused. */
export const SIGNATURE_WINDOW_SECONDS = 5 * 60;

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/**
 * The Events API's request signature (Slack's "Verifying requests"): `v0=` and
 * the hex HMAC-SHA256, keyed by the signing secret, of `v0:<timestamp>:<raw body>`.
 * Pure; the raw body must be exactly the bytes received. Compared in constant time.
 */
export function checkSlackSignature(input: {
  signingSecret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  rawBody: string;
  nowSeconds: number;
}): SignatureCheck {
  const { timestamp, signature } = input;
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'X-Slack-Request-Timestamp is missing or not a number' };
  if (Math.abs(input.nowSeconds - Number(timestamp)) > SIGNATURE_WINDOW_SECONDS) {
    return { ok: false, reason: 'X-Slack-Request-Timestamp is outside the 5-minute window (a replay, or a clock off)' };
  }
  if (!signature || !/^v0=[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: 'X-Slack-Signature is missing or malformed' };
  const expected = `v0=${createHmac('sha256', input.signingSecret).update(`v0:${timestamp}:${input.rawBody}`).digest('hex')}`;
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) return { ok: false, reason: 'X-Slack-Signature does not match the signing secret' };
  return { ok: true };
}
