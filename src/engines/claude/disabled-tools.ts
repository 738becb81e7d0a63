/**
 * Tools of the pinned engine (claude-agent-sdk 0.3.333, Claude Code 2.1.333)
 * that are turned off in every Tagbox session, each with why. The rule: the
 * agent's only way out is the Agent Proxy, and work happens when Tagbox runs a
 * turn. A tool that leaves by another path (run on the provider's side, or
 * through a service of Anthropic's), schedules work outside Tagbox, or waits
 * for a person who is not there, is not offered to the model at all.
 */
export const DISABLED_TOOLS: Readonly<Record<string, string>> = {
  WebSearch: 'the search runs on the model provider\'s side, outside the Agent Proxy and its policy',
  WebFetch: 'it asks the provider about a domain before fetching (a call outside the narrowed model connection); the agent fetches with curl through the proxy instead',
  CronCreate: 'the engine\'s own scheduler would run work outside Tagbox; schedules are Tagbox\'s (`tagbox schedule`)',
  CronDelete: 'part of the engine\'s own scheduler (see CronCreate)',
  CronList: 'part of the engine\'s own scheduler (see CronCreate)',
  ScheduleWakeup: 'a wake-up later would run a turn Tagbox did not start',
  RemoteTrigger: 'it triggers agents on Anthropic\'s cloud, outside the sandbox',
  PushNotification: 'notifications go through Anthropic\'s service; the thread is where the agent speaks',
  SendUserMessage: 'a channel to the user outside the thread; replies go in the thread',
  SendUserFile: 'a channel to the user outside the thread; files stay in the workspace',
  SendMessage: 'messages to peer sessions (Remote Control) leave the sandbox by another path',
  ReadNotifications: 'notifications from outside the session',
  Monitor: 'a background watcher that outlives the turn and wakes the agent later',
  Artifact: 'publishes to Anthropic\'s hosted artifacts',
  ClaudeDesign: 'a hosted design service of Anthropic\'s',
  Projects: 'hosted projects of claude.ai',
  SendFeedback: 'sends feedback to Anthropic',
  ShareOnboardingGuide: 'onboarding through Anthropic\'s service',
  ShowOnboardingRolePicker: 'interactive onboarding; no one is at a terminal',
  OfferChromeSetup: 'a browser on the host is not the sandbox\'s',
  AskUserQuestion: 'it waits for an answer in a UI no one is looking at; the agent asks in its reply instead',
  EndConversation: 'Tagbox ends turns, not the engine',
};

export const DISABLED_TOOL_NAMES: readonly string[] = Object.keys(DISABLED_TOOLS);
