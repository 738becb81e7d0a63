import { Page } from '../ui/parts';

/** Placeholder: being built. */
export function SchedulesPage(_props: { params: Record<string, string> }) {
  return <Page title="SchedulesPage">{null}</Page>;
}

