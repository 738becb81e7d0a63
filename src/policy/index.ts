/**
 * src/policy: everything the proxy and the access layer need. All pure; the one
 * file reader, loadBundleFile, is imported from './load-bundle-file.js' directly.
 */
export type { Bundle, BundleFile, BundleFileInput, Connection, HostEntry, Inject, Narrow } from './bundle-schema.js';
export { bundleFileSchema, bundleSchema } from './bundle-schema.js';
export { parseBundleFile, validateBundleFile, validateBundles } from './bundle-file.js';
export type { AllowRule, CredentialRule, EgressPolicy } from './compile.js';
export { compilePolicy, mergeBundles } from './compile.js';
export type { Decision, EgressRequest, Injection, NormalisedRequest, Outcome } from './decide.js';
export { decide, decideTunnel, normaliseRequest } from './decide.js';
export { renderInjection } from './inject.js';
export type { HostMatcher } from './passthrough.js';
export { compileHostMatcher } from './passthrough.js';
export type { HostPattern, NormalisedHost, Result } from './hosts.js';
export { DEFAULT_PORTS, hostMatches, normaliseHost, parseHostPattern } from './hosts.js';
export type { NormalisedPath } from './paths.js';
export { matchesPathPrefix, normalisePath } from './paths.js';
export { isReadOnlyMethod } from './methods.js';
export type { IpAddress } from './ip.js';
export { formatIp, parseIpLiteral } from './ip.js';
export type { Cidr, CompiledCidrs } from './cidr.js';
export { compileCidrTexts, compileCidrs, parseCidr } from './cidr.js';
export type { AddressClass, Classification } from './address-class.js';
export { classifyAddress } from './address-class.js';
export type { ForbiddenAddressOptions } from './ssrf.js';
export { isForbiddenAddress } from './ssrf.js';
