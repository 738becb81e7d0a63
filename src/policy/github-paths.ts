/**
 * What a request to GitHub is, read from its method and normalised path
 * (paths.ts): git smart HTTP on github.com, the REST API on api.github.com.
 * Pure. The proxy's git credential goes only to requests these recognise, and
 * the same functions tell the proxy which request is a push to inspect or a
 * pull request to report, so the decision and the inspection never disagree.
 */
import type { NormalisedPath } from './paths.js';

export type GitService = 'refs' | 'upload-pack' | 'receive-pack';

export interface Repository {
  owner: string;
  repo: string;
}

// Owners: alphanumerics and hyphens; repositories add "." and "_" (never "." or ".." alone).
const GIT_PATH = /^\/([A-Za-z0-9-]{1,39})\/([A-Za-z0-9._-]{1,100})\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const API_REPO_PATH = /^\/repos\/([A-Za-z0-9-]{1,39})\/([A-Za-z0-9._-]{1,100})(\/.*)?$/;

/** A git smart-HTTP request (`GET …/info/refs`, `POST …/git-upload-pack`, `POST …/git-receive-pack`), or undefined. */
export function gitRequestOf(method: string, path: NormalisedPath): (Repository & { service: GitService }) | undefined {
  if (path.unsafe !== undefined) return undefined;
  const m = GIT_PATH.exec(path.path);
  if (!m) return undefined;
  const repo = m[2]!.endsWith('.git') ? m[2]!.slice(0, -4) : m[2]!;
  if (repo === '' || repo === '.' || repo === '..') return undefined;
  const service: GitService = m[3] === 'info/refs' ? 'refs' : m[3] === 'git-upload-pack' ? 'upload-pack' : 'receive-pack';
  if (service === 'refs' ? method !== 'GET' && method !== 'HEAD' : method !== 'POST') return undefined;
  return { owner: m[1]!, repo, service };
}

/** The repository a REST path is about (`/repos/{owner}/{repo}[/…]`), or undefined. */
export function apiRepositoryOf(path: NormalisedPath): (Repository & { rest: string }) | undefined {
  if (path.unsafe !== undefined) return undefined;
  const m = API_REPO_PATH.exec(path.path);
  if (!m || m[2] === '.' || m[2] === '..') return undefined;
  return { owner: m[1]!, repo: m[2]!, rest: m[3] ?? '' };
}

/** `POST /repos/{owner}/{repo}/pulls`: a request that creates a pull request. */
export function pullRequestCreationOf(method: string, path: NormalisedPath): Repository | undefined {
  if (method !== 'POST') return undefined;
  const r = apiRepositoryOf(path);
  return r && (r.rest === '/pulls' || r.rest === '/pulls/') ? { owner: r.owner, repo: r.repo } : undefined;
}

export function repositoryKey(r: Repository): string {
  // GitHub's owner and repository names are case-insensitive.
  return `${r.owner}/${r.repo}`.toLowerCase();
}

/** The GitHub side of a credential rule, as compiled. */
export interface GithubRule {
  readonly service: 'git' | 'api';
  /** Lower-case owner/repo; absent: every repository the installation reaches. */
  readonly repositories?: ReadonlySet<string>;
  /** The branch pattern pushes must match (github-settings.ts). */
  readonly pushBranches: string;
}

/** Why a request is outside a GitHub rule (so it gets no credential), or undefined. */
export function githubOutside(rule: GithubRule, method: string, path: NormalisedPath): string | undefined {
  const repo = rule.service === 'git' ? gitRequestOf(method, path) : apiRepositoryOf(path);
  if (rule.service === 'git' && !repo) return `${method} ${path.path} is not a git smart-HTTP request (the token goes to github.com for git only)`;
  if (!rule.repositories) return undefined;
  if (!repo) return `path ${path.path} is not about one of the repositories ${[...rule.repositories].join(', ')}`;
  if (!rule.repositories.has(repositoryKey(repo))) return `repository ${repo.owner}/${repo.repo} is not one of ${[...rule.repositories].join(', ')}`;
  return undefined;
}

/**
 * The REST writes the App's token goes with, under /repos/{owner}/{repo}:
 * pull requests, issues, comments and git objects (blobs, trees, commits,
 * tag objects), none of which moves a branch. Branches and tags change only
 * by `git push`, where the push policy judges them; merges, contents
 * writes, ref writes, reviews (an approval could satisfy branch protection),
 * settings and everything else are refused. Reads are not limited here.
 */
const API_WRITES: ReadonlyArray<readonly [string, RegExp]> = [
  ['POST', /^\/pulls$/],
  ['PATCH', /^\/pulls\/\d+$/],
  ['POST', /^\/pulls\/\d+\/(?:comments|requested_reviewers)$/],
  ['POST', /^\/pulls\/\d+\/comments\/\d+\/replies$/],
  ['PATCH', /^\/pulls\/comments\/\d+$/],
  ['POST', /^\/issues$/],
  ['PATCH', /^\/issues\/\d+$/],
  ['POST', /^\/issues\/\d+\/(?:comments|labels|assignees)$/],
  ['PATCH', /^\/issues\/comments\/\d+$/],
  ['POST', /^\/git\/(?:blobs|trees|commits|tags)$/],
];

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Why a request to the REST API is refused outright on a GitHub App connection, or undefined (it may carry the token). */
export function apiRefusal(method: string, path: NormalisedPath): string | undefined {
  if (READS.has(method)) return undefined;
  const repo = apiRepositoryOf(path);
  const rest = repo?.rest.replace(/\/$/, '') ?? '';
  if (repo && API_WRITES.some(([m, re]) => m === method && re.test(rest))) return undefined;
  if (path.path === '/graphql') return 'GraphQL is not sent with the GitHub App token (a mutation could move a branch): use the REST API';
  return `${method} ${path.path} is not one of the writes the GitHub App token is sent with (pull requests, issues, comments, git objects); branches and tags change only by git push, under the push policy`;
}
