import type { FunctionComponent } from 'preact';
import { useEffect } from 'preact/hooks';
import { Link, match, navigate } from '../router';
import { useTitle } from '../ui/hooks';
import { AuditPage } from './audit';
import { BundleEditPage, BundlesPage } from './bundles';
import { BundlesYamlPage } from './bundles-yaml';
import { ChannelSettingsPage, ChannelsPage } from './channels';
import { MembersPage } from './members';
import { OrgSettingsPage } from './org-settings';
import { PluginsPage } from './plugins';
import { SchedulesPage } from './schedules';
import { ChannelAccessPage, ScopesPage } from './scopes';
import { SecretsPage } from './secrets';
import { UsagePage } from './usage';

type Params = Record<string, string>;
interface Section {
  label: string;
  href: string;
  pages: Array<{ pattern: string; page: FunctionComponent<{ params: Params }> }>;
}

/** The console's sections, in the order of the navigation. */
export const SECTIONS: Array<{ group: string; items: Section[] }> = [
  {
    group: 'Access',
    items: [
      { label: 'Bundles', href: '/admin/bundles', pages: [{ pattern: '/admin/bundles', page: BundlesPage }, { pattern: '/admin/bundles/new', page: BundleEditPage }, { pattern: '/admin/bundles/:name', page: BundleEditPage }] },
      { label: 'Bundles as YAML', href: '/admin/bundles-yaml', pages: [{ pattern: '/admin/bundles-yaml', page: BundlesYamlPage }] },
      { label: 'Secrets', href: '/admin/secrets', pages: [{ pattern: '/admin/secrets', page: SecretsPage }] },
      { label: 'Scopes', href: '/admin/scopes', pages: [{ pattern: '/admin/scopes', page: ScopesPage }, { pattern: '/admin/scopes/channel/:id', page: ChannelAccessPage }] },
      { label: 'Plugins', href: '/admin/plugins', pages: [{ pattern: '/admin/plugins', page: PluginsPage }] },
    ],
  },
  {
    group: 'Organisation',
    items: [
      { label: 'Members', href: '/admin/members', pages: [{ pattern: '/admin/members', page: MembersPage }] },
      { label: 'Settings', href: '/admin/settings', pages: [{ pattern: '/admin/settings', page: OrgSettingsPage }] },
      { label: 'Channels', href: '/admin/channels', pages: [{ pattern: '/admin/channels', page: ChannelsPage }, { pattern: '/admin/channels/:id', page: ChannelSettingsPage }] },
      { label: 'Schedules', href: '/admin/schedules', pages: [{ pattern: '/admin/schedules', page: SchedulesPage }] },
    ],
  },
  {
    group: 'Oversight',
    items: [
      { label: 'Usage', href: '/admin/usage', pages: [{ pattern: '/admin/usage', page: UsagePage }] },
      { label: 'Audit log', href: '/admin/audit', pages: [{ pattern: '/admin/audit', page: AuditPage }] },
    ],
  },
];

/** The admin console: a section list on the left, the page on the right. */
export function AdminPage({ path }: { path: string }) {
  useTitle('Admin');
  useEffect(() => {
    if (path === '/admin' || path === '/admin/') navigate('/admin/bundles', { replace: true });
  }, [path]);
  let found: { page: FunctionComponent<{ params: Params }>; params: Params } | undefined;
  let current: Section | undefined;
  for (const group of SECTIONS)
    for (const section of group.items)
      for (const p of section.pages) {
        const params = !found ? match(p.pattern, path) : undefined;
        if (params) {
          found = { page: p.page, params };
          current = section;
        }
      }
  const Page = found?.page;
  return (
    <div class="admin">
      <nav class="admin-nav" aria-label="Admin sections">
        {SECTIONS.map((group) => (
          <div key={group.group} class="admin-nav-group">
            <h2>{group.group}</h2>
            <ul>
              {group.items.map((s) => (
                <li key={s.href}>
                  <Link href={s.href} aria-current={s === current ? 'page' : undefined}>
                    {s.label}
                  </Link>
                </li>
              ))}
            </ul>
          </div>
        ))}
      </nav>
      <div class="admin-body">{Page ? <Page params={found!.params} /> : path.startsWith('/admin/') && path !== '/admin/' ? <p class="empty">No such admin page.</p> : null}</div>
    </div>
  );
}
