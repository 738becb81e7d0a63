import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function PluginsPage(_props: { params: Record<string, string> }) {
  return <Page title="PluginsPage">{null}</Page>;
}

