import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function AuditPage(_props: { params: Record<string, string> }) {
  return <Page title="AuditPage">{null}</Page>;
}

