import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function ScopesPage(_props: { params: Record<string, string> }) {
  return <Page title="ScopesPage">{null}</Page>;
}

/** Placeholder: being built. */
export function ChannelAccessPage(_props: { params: Record<string, string> }) {
  return <Page title="ChannelAccessPage">{null}</Page>;
}

