import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function SecretsPage(_props: { params: Record<string, string> }) {
  return <Page title="SecretsPage">{null}</Page>;
}

