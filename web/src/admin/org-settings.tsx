import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function OrgSettingsPage(_props: { params: Record<string, string> }) {
  return <Page title="OrgSettingsPage">{null}</Page>;
}

