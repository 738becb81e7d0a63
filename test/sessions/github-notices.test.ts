import { describe, expect, it } from 'vitest';
import { blockedNotice, noticeKey, pullRequestNotice, pushNotice, type BlockedFacts } from '../../src/sessions/notices.js';

/**
 * What the thread is told of the turn's GitHub work (pure): a pull request
 * opened, branches pushed, a push refused. Titles, urls and ref names came
 * from the sandbox or GitHub: shown as data, with nothing that steers a
 * terminal or reorders what a reader sees.
 */
// C0 (but newline and tab), DEL, C1, and the bidi overrides and isolates.
// eslint-disable-next-line no-control-regex -- control characters are what is looked for
const HOSTILE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('pullRequestNotice', () => {
  const pr = { repository: 'acme/widgets', number: 42, url: 'https://github.com/acme/widgets/pull/42' };

  it('names the repository and number, quotes the title, and ends with the link', () => {
    expect(pullRequestNotice({ ...pr, title: 'Fix the parser' })).toBe('Opened pull request acme/widgets#42 “Fix the parser”: https://github.com/acme/widgets/pull/42');
  });

  it('without a title (or an empty one): no quotes', () => {
    expect(pullRequestNotice(pr)).toBe('Opened pull request acme/widgets#42: https://github.com/acme/widgets/pull/42');
    expect(pullRequestNotice({ ...pr, title: '' })).toBe('Opened pull request acme/widgets#42: https://github.com/acme/widgets/pull/42');
  });

  it('control characters, escape sequences and bidi overrides in the title and url are removed', () => {
    const text = pullRequestNotice({
      repository: 'acme/\u202ewidgets',
      number: 7,
      url: 'https://github.com/acme/widgets/pull/7\u202e\u0007',
      title: 'Fix\u001b[2J\u001b]0;pwned\u0007 \u202eevil\u202c \u2066iso\u2069\u0000\u007f\u0085 done',
    });
    expect(text).not.toMatch(HOSTILE);
    expect(text).not.toContain('\u001b');
    expect(text).toBe('Opened pull request acme/widgets#7 “Fix evil iso done”: https://github.com/acme/widgets/pull/7');
  });

  it('a long title is cut to 200 characters; mass mentions are defused', () => {
    const text = pullRequestNotice({ ...pr, title: `@channel ${'t'.repeat(500)}` });
    const title = /“(.*)”/.exec(text)![1]!;
    expect(title.length).toBe(200);
    expect(title.startsWith('@\u200bchannel')).toBe(true);
  });
});

describe('pushNotice', () => {
  it('one branch by its short name', () => {
    expect(pushNotice('acme/widgets', ['refs/heads/tagbox/th1'])).toBe('Pushed branch tagbox/th1 to acme/widgets.');
  });

  it('several branches, in the order given; only the refs/heads/ prefix is dropped', () => {
    expect(pushNotice('acme/widgets', ['refs/heads/tagbox/th1', 'refs/heads/tagbox/th1-docs', 'refs/tags/v1', 'refs/heads/refs/heads/x'])).toBe(
      'Pushed branches tagbox/th1, tagbox/th1-docs, refs/tags/v1, refs/heads/x to acme/widgets.',
    );
  });

  it('control characters and bidi overrides in ref names and the repository are removed', () => {
    const text = pushNotice('acme/\u0007widgets\u202e', ['refs/heads/tagbox/\u202eth1\u001b[31m', 'refs/heads/\u2066b\u2069']);
    expect(text).not.toMatch(HOSTILE);
    expect(text).toBe('Pushed branches tagbox/th1, b to acme/widgets.');
  });
});

describe('a refused push', () => {
  const refused: BlockedFacts = { host: 'github.com', port: 443, reason: 'push refused: only tagbox/th1 may be pushed here (refs/heads/main is not)' };

  it('says what was refused and why, with no "ask an admin" advice, in a channel and in a DM', () => {
    const expected = 'Refused a push to github.com: only tagbox/th1 may be pushed here (refs/heads/main is not).';
    expect(blockedNotice(refused, { kind: 'channel', channelName: 'eng' })).toBe(expected);
    expect(blockedNotice(refused, { kind: 'dm' })).toBe(expected);
    expect(blockedNotice(refused, { kind: 'channel', channelName: undefined })).not.toMatch(/admin|bundle|connector/);
  });

  it('a port other than 80 and 443 is named; the reason is neutralised', () => {
    const text = blockedNotice({ host: 'ghe.example', port: 8443, reason: 'push refused: \u202emain\u202c is \u001b[1mprotected' }, { kind: 'dm' });
    expect(text).toBe('Refused a push to ghe.example:8443: main is protected.');
  });

  it('any other block of github.com still advises asking an admin', () => {
    const other = blockedNotice({ host: 'github.com', port: 443, reason: 'host github.com is not allowed by any bundle' }, { kind: 'channel', channelName: 'eng' });
    expect(other).toMatch(/^Blocked a request to github\.com: /);
    expect(other).toContain('ask an admin');
  });

  it('is counted apart from the host\'s other blocks (one of each per turn), and per host', () => {
    const key = noticeKey(refused);
    expect(key).not.toBe(noticeKey({ host: 'github.com', port: 443, reason: 'host github.com is not allowed by any bundle' }));
    expect(key).not.toBe(noticeKey({ host: 'github.com', port: 443, reason: 'path /x is not allowed' }));
    // Every refused push to the host is one notice, whatever the reason; host case does not matter.
    expect(noticeKey({ ...refused, host: 'GitHub.com', reason: 'push refused: deleting a branch is not allowed' })).toBe(key);
    expect(noticeKey({ ...refused, host: 'ghe.example' })).not.toBe(key);
  });
});

describe('blockedNotice for a GitHub API write the push policy refuses', () => {
  it('says what was refused and why, without advice to ask an admin', () => {
    const reason =
      'host api.github.com matches connection eng/github (api.github.com, REST API), but PUT /repos/acme/widgets/pulls/1/merge is not one of the writes the GitHub App token is sent with (pull requests, issues, comments, git objects); branches and tags change only by git push, under the push policy';
    const text = blockedNotice({ host: 'api.github.com', port: 443, reason }, { kind: 'channel', channelName: 'eng' });
    expect(text).toBe(
      'Refused a request to api.github.com: PUT /repos/acme/widgets/pulls/1/merge is not one of the writes the GitHub App token is sent with (pull requests, issues, comments, git objects); branches and tags change only by git push, under the push policy.',
    );
    expect(text).not.toMatch(/admin/);
  });
});
