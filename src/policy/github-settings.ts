/**
 * A GitHub App connection's settings (bundle files' `github:` block) and the
 * hosts it covers. The token is minted by the proxy from a `github-app` vault
 * secret; these settings say what it may do: which repositories (the token is
 * minted for them only, and requests outside them get no credential), which
 * permissions (minted with those only), and which branches a push may update.
 */
import { z } from 'zod';

/** git smart HTTP (clone, fetch, push): basic auth `x-access-token:<token>`. */
export const GITHUB_GIT_HOST = 'github.com';
/** The REST API: `Authorization: Bearer <token>`. */
export const GITHUB_API_HOST = 'api.github.com';
export const GITHUB_GIT_USERNAME = 'x-access-token';
export const DEFAULT_PUSH_BRANCHES = 'tagbox/*';
/** Replaced, in pushBranches, by the thread (session) id of the listener a push arrives on. */
export const THREAD_PLACEHOLDER = '{thread}';

// GitHub's own rules: owners are alphanumerics and single hyphens; repositories add "." and "_".
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;
const PERMISSION = /^[a-z_]{1,64}$/;

const repository = z.string().superRefine((text, ctx) => {
  const [owner, repo, extra] = text.split('/');
  if (extra !== undefined || owner === undefined || repo === undefined || !OWNER.test(owner) || !REPO.test(repo) || repo === '.' || repo === '..' || repo.endsWith('.git')) {
    ctx.addIssue({ code: 'custom', message: 'expected a repository as owner/name (e.g. acme/widgets), without .git' });
  }
});

/**
 * A branch pattern: a branch name in which `*` stands for one or more
 * characters (any, "/" included) and `{thread}` for the thread's id. Refs
 * outside refs/heads/ (tags, notes) never match.
 */
const pushBranches = z
  .string()
  .min(1, 'expected a branch pattern such as tagbox/*')
  .max(200)
  .superRefine((text, ctx) => {
    const bare = text.split(THREAD_PLACEHOLDER).join('x');
    if (!/^[A-Za-z0-9._/*-]+$/.test(bare)) ctx.addIssue({ code: 'custom', message: `expected a branch pattern of letters, digits, ".", "_", "-", "/", "*" and ${THREAD_PLACEHOLDER} (e.g. tagbox/*)` });
    else if (/(^|\/)\.|\.\.|\/\/|^\/|\/$|\.lock(\/|$)/.test(bare)) ctx.addIssue({ code: 'custom', message: 'expected a valid branch name pattern (no leading "/" or ".", no "..", "//" or ".lock")' });
    else if (bare === '*' || bare.replace(/\*/g, '') === '') ctx.addIssue({ code: 'custom', message: 'a pattern of "*" alone would allow pushing to every branch, main included; give a prefix such as tagbox/*' });
  });

export const githubSettingsSchema = z
  .strictObject({
    repositories: z.array(repository).min(1, 'expected at least one repository (omit "repositories" for all the installation can reach)').max(500).optional(),
    permissions: z
      .record(z.string(), z.enum(['read', 'write', 'admin'], 'expected read, write or admin'))
      // Keys checked here, not by the record's key schema: zod reports those with a generic "Invalid key in record".
      .superRefine((perms, ctx) => {
        for (const key of Object.keys(perms)) {
          if (!PERMISSION.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: 'expected a GitHub permission name such as contents or pull_requests' });
        }
      })
      .optional(),
    pushBranches: pushBranches.default(DEFAULT_PUSH_BRANCHES),
  })
  .superRefine((s, ctx) => {
    // An installation token is minted for repositories of the installation's one account: names, not owners.
    const owners = new Set((s.repositories ?? []).map((r) => r.split('/')[0]!.toLowerCase()));
    if (owners.size > 1) ctx.addIssue({ code: 'custom', path: ['repositories'], message: `expected repositories of one owner (a GitHub App installation is one account), got ${[...owners].join(', ')}` });
  });

export type GithubSettings = z.output<typeof githubSettingsSchema>;

/** The repository names to mint a token for (the installation's owner is implied). */
export function mintRepositories(settings: GithubSettings): string[] | undefined {
  return settings.repositories?.map((r) => r.split('/')[1]!);
}
