/**
 * Renders an injection into the header the proxy sets (replacing any value the
 * client sent). Pure: the proxy fetches the secret from the vault at request
 * time and passes it in. A secret that cannot be a header value is refused
 * rather than sent, so it can never split the request.
 */
import { failure } from '../errors.js';
import { SECRET_PLACEHOLDER, type Inject } from './bundle-schema.js';

export function renderInjection(inject: Inject, secret: string): { name: string; value: string } {
  if (!/^[\x20-\x7e\t]*$/.test(secret)) {
    throw failure('the secret contains characters that cannot appear in an HTTP header', 'bad_secret');
  }
  if ('basic' in inject) {
    const token = Buffer.from(`${inject.basic.username}:${secret}`, 'utf8').toString('base64');
    return { name: 'Authorization', value: `Basic ${token}` };
  }
  return { name: inject.header, value: inject.value.split(SECRET_PLACEHOLDER).join(secret) };
}
