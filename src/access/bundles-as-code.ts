import { stringify } from 'yaml';
import { parseBundleFile } from '../policy/bundle-file.js';
import type { ActorRef } from './actor.js';
import { describeChange, type BundleChange } from './bundle-diff.js';
import type { Bundle, BundleSpec } from './model.js';
import { connectionInput, fromPolicyBundle, specOf } from './spec.js';

/**
 * Access as code (CONTRACT.md bundle files), shared by `tagbox bundle
 * apply|export` and POST /bundles/apply, GET /bundles/export: one parser, one
 * plan, one export, so the CLI and the API cannot drift apart.
 */
export interface BundleApplier {
  applyBundles(actor: ActorRef, orgId: string, specs: BundleSpec[], options: { prune?: boolean; dryRun?: boolean }): Promise<BundleChange[]>;
  listBundles(orgId: string): Promise<Bundle[]>;
}

/** Bundle-file text to specs; throws invalidInput naming `source`, the line and the field. */
export function bundleSpecsFromText(text: string, source: string): BundleSpec[] {
  return parseBundleFile(text, source).bundles.map((b) => fromPolicyBundle(b));
}

export interface AppliedPlan {
  applied: boolean;
  changes: Array<{ bundle: string; action: BundleChange['op']; description: string }>;
}

/** Makes the stored bundles match `specs` in one transaction (or plans it, dryRun); attachments are kept. */
export async function applyBundleSpecs(admin: BundleApplier, actor: ActorRef, orgId: string, specs: BundleSpec[], options: { prune: boolean; dryRun: boolean }): Promise<AppliedPlan> {
  const plan = await admin.applyBundles(actor, orgId, specs, options);
  return {
    applied: !options.dryRun && plan.length > 0,
    changes: plan.map((change) => ({ bundle: change.name, action: change.op, description: describeChange(change) })),
  };
}

/** Every stored bundle as a bundle file (YAML); applying it changes nothing. */
export async function exportBundlesYaml(admin: BundleApplier, orgId: string): Promise<string> {
  const bundles = (await admin.listBundles(orgId)).map((b) => fileShape(specOf(b)));
  return stringify({ bundles }, { lineWidth: 0 });
}

/** A stored bundle in the bundle-file shape (plain strings for hosts without ports). */
function fileShape(spec: BundleSpec): unknown {
  return {
    name: spec.name,
    domains: spec.domains.map((d) => (d.ports ? { host: d.host, ports: d.ports } : d.host)),
    connections: spec.connections.map(connectionInput),
  };
}
