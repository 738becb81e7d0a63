/**
 * The sandbox layer: a provider interface, the local bubblewrap provider, the
 * session manager and one-shot helpers. See docs/SANDBOX.md.
 */
export type { ExecHandle, ExecRequest, ExecResult, Sandbox, SandboxInfo, SandboxProvider, SandboxSpec } from './types.js';
export type { LimitName, SandboxLimits } from './limits.js';
export { DEFAULT_LIMITS, resolveLimits, describeEnforcement } from './limits.js';
export { createBubblewrapProvider } from './bubblewrap-provider.js';
export type { BubblewrapProviderOptions } from './bubblewrap-provider.js';
export { SandboxManager } from './manager.js';
export type { SandboxManagerOptions } from './manager.js';
export { runInSandbox, runOnce } from './run.js';
export type { CollectedResult, RunOutput } from './run.js';
export { isSandboxUnavailable, sandboxUnavailable, SANDBOX_UNAVAILABLE } from './errors.js';
export { detectLimitMechanism, describeLimitMechanism, findExecutable, probeUserNamespaces } from './host-support.js';
export type { LimitMechanism } from './host-support.js';
