import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function BundlesYamlPage(_props: { params: Record<string, string> }) {
  return <Page title="BundlesYamlPage">{null}</Page>;
}

