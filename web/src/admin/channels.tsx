import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function ChannelsPage(_props: { params: Record<string, string> }) {
  return <Page title="ChannelsPage">{null}</Page>;
}

/** Placeholder: being built. */
export function ChannelSettingsPage(_props: { params: Record<string, string> }) {
  return <Page title="ChannelSettingsPage">{null}</Page>;
}

