import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function UsagePage(_props: { params: Record<string, string> }) {
  return <Page title="UsagePage">{null}</Page>;
}

