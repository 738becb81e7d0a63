import { parentPort } from 'node:worker_threads';
import type { AuditEventInput } from '../audit/events.js';
import { AuditLog } from '../audit/log.js';
import { isTagboxError } from '../errors.js';
import { policyFromBundleFile } from '../proxy/policy-source.js';
import type { ControlStore } from '../store/database.js';
import { contextFromGlobals, type GlobalOptions } from './context.js';

/**
 * `tagbox exec`'s audit of its sandbox, in a worker thread: loading the config,
 * bundle and store code (large libraries, about a hundred milliseconds of one
 * CPU) and opening the store happen here, on another CPU, while the main thread
 * starts the sandbox. The main thread asks, in this order:
 *   open     {globals, bundles, bundle, event}  config, bundle names, store; append `create`
 *   release  {event}                            append `release`
 *   close                                       close the store (signing its checkpoint), then end
 * and gets `{ ok: true, ... }` or `{ ok: false, error }` back for each. This
 * thread holds no credential: it never loads the CA key, the vault or the proxy.
 */
export type AuditRequest =
  | { op: 'open'; globals: GlobalOptions; bundles?: string; bundle: string[]; event: AuditEventInput }
  | { op: 'release'; event: AuditEventInput }
  | { op: 'close' };

export type AuditReply = { ok: true; bundles?: string[] } | { ok: false; error: { message: string; exitCode: 1 | 2; code: string } };

let store: ControlStore | undefined;
let audit: AuditLog | undefined;

async function handle(request: AuditRequest): Promise<AuditReply> {
  switch (request.op) {
    case 'open': {
      const ctx = contextFromGlobals(request.globals);
      const { bundles } = policyFromBundleFile(request.bundles, request.bundle);
      store = await ctx.openStore();
      audit = new AuditLog(store);
      const names = bundles.map((b) => b.name);
      await audit.append({ ...request.event, bundles: names });
      return { ok: true, bundles: names };
    }
    case 'release':
      if (!audit) throw new Error('the audit log is not open');
      await audit.append(request.event);
      return { ok: true };
    case 'close':
      await store?.close();
      store = undefined;
      audit = undefined;
      return { ok: true };
  }
}

const port = parentPort;
if (port) {
  // One request at a time, in order.
  let queue = Promise.resolve();
  port.on('message', (request: AuditRequest) => {
    queue = queue.then(async () => {
      let reply: AuditReply;
      try {
        reply = await handle(request);
      } catch (error) {
        const e = error as Error;
        reply = { ok: false, error: { message: e.message, exitCode: isTagboxError(error) ? error.exitCode : 1, code: isTagboxError(error) ? error.code : 'failed' } };
      }
      port.postMessage(reply);
      if (request.op === 'close') port.close();
    });
  });
}
