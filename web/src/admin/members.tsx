import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function MembersPage(_props: { params: Record<string, string> }) {
  return <Page title="MembersPage">{null}</Page>;
}

