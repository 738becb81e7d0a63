/**
 * What Tagbox appends to the engine's system prompt (pure): where the agent
 * is and what it can reach, the channel memory, then the custom instructions —
 * the org's, then the channel's (DESIGN.md "Engines").
 */
export interface PromptContext {
  place: { kind: 'channel'; name?: string } | { kind: 'dm'; memberName?: string };
  orgInstructions?: string;
  channelInstructions?: string;
  memory?: { path: string; content: string };
  /** Whom the turn's work is credited to, and the thread's branch (turn-credit.ts). */
  credit?: { name: string; branch: string; line: string };
}

export function systemPromptAppend(context: PromptContext): string {
  const where =
    context.place.kind === 'channel'
      ? `in the chat channel ${context.place.name ? `#${context.place.name}` : '(unnamed)'}, for everyone in it`
      : `in a direct message with ${context.place.memberName ?? 'a member'}, acting as them with their own connectors`;
  const parts = [
    [
      '# Tagbox',
      `You are the agent of a team's chat, working ${where}. Messages from people start with their name.`,
      'You run in a sandbox with no credentials. Everything you reach goes through the Agent Proxy: it lets through only the hosts',
      "this place's access allows and adds the credentials itself. A blocked request answers 403 with a reason naming the host;",
      'say which host was blocked and that an admin can allow it, rather than trying another way around.',
      'Your reply is posted in the thread: be concise, and put commands and code in code blocks.',
    ].join('\n'),
  ];
  if (context.memory) {
    const content = context.memory.content.trim();
    parts.push(
      [
        '# Memory',
        `${context.memory.path} is this ${context.place.kind === 'channel' ? "channel's" : "conversation's"} memory: it is kept after this session and given to every later one.`,
        'Edit it to remember durable facts (decisions, conventions, where things are); keep it short.',
        content ? `It says:\n<memory>\n${content}\n</memory>` : 'It is empty.',
      ].join('\n'),
    );
  }
  if (context.credit) {
    parts.push(
      [
        '# GitHub',
        "If this place's access includes GitHub, git and the GitHub API (https://api.github.com) work here without credentials: the proxy adds",
        "the GitHub App's token itself, so never put a token in a remote URL or a header. Clone https://github.com/OWNER/REPO.git.",
        `Push your work to the branch ${context.credit.branch} (also in $TAGBOX_BRANCH); pushes to other branches are refused.`,
        `Commits are credited to ${context.credit.name} automatically (a git hook adds the trailer).`,
        `Open a pull request with POST https://api.github.com/repos/OWNER/REPO/pulls (head ${context.credit.branch}) and end its body with this line (also in $TAGBOX_CREDIT):`,
        context.credit.line,
        'The thread shows the pull request link by itself.',
      ].join('\n'),
    );
  }
  if (context.orgInstructions?.trim()) parts.push(`# Instructions from the organisation\n${context.orgInstructions.trim()}`);
  if (context.channelInstructions?.trim()) {
    const title = context.place.kind === 'channel' && context.place.name ? `# Instructions for #${context.place.name}` : '# Instructions for this channel';
    parts.push(`${title}\n${context.channelInstructions.trim()}`);
  }
  return parts.join('\n\n');
}
