import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function BundlesPage(_props: { params: Record<string, string> }) {
  return <Page title="BundlesPage">{null}</Page>;
}

/** Placeholder: being built. */
export function BundleEditPage(_props: { params: Record<string, string> }) {
  return <Page title="BundleEditPage">{null}</Page>;
}

