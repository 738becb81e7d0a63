import { createServer } from 'node:https';
import { createTestCa } from '../fixtures/ca.js';
import { startSessions, agentTexts, systemTexts } from '../sessions/harness.js';
import { claudeEngine } from '../../src/engines/claude/claude-engine.js';
import { findClaudeBinary } from '../../src/engines/claude/claude-binary.js';

const ca = await createTestCa();
const leaf = await ca.issue(['api.anthropic.com']);
const seen: any[] = [];
const srv = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
  let body = ''; req.on('data', (c) => (body += c)); req.on('end', () => {
    const j = body ? JSON.parse(body) : {};
    seen.push({ url: req.url, key: req.headers['x-api-key'], tools: (j.tools ?? []).map((t: any) => t.name), sys: JSON.stringify(j.system ?? '').slice(-600), method: req.method, msgs: String(JSON.stringify(j.messages)).slice(0, 800) });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const ev = (t: string, d: any) => res.write(`event: ${t}\ndata: ${JSON.stringify(d)}\n\n`);
    ev('message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: j.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } });
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello from the fake' } });
    ev('content_block_stop', { type: 'content_block_stop', index: 0 });
    ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 5 } });
    ev('message_stop', { type: 'message_stop' });
    res.end();
  });
});
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
const port = (srv.address() as any).port;
const bin = findClaudeBinary()!;
const h = await startSessions('sqlite', { engine: 'claude', modelSecret: 'anthropic-key' }, [claudeEngine({ binaryDir: bin.dir, model: 'claude-sonnet-4-5', maxTurns: 10, timeoutMs: 120000 })], {
  daemonEnv: { TAGBOX_UPSTREAM_CONNECT_TO: `api.anthropic.com:443:127.0.0.1:${port}`, TAGBOX_UPSTREAM_CA_FILE: ca.certFile },
});
try {
  await h.proxy.secrets.put('anthropic-key', Buffer.from('sk-ant-real-key-123'));
  const t0 = Date.now();
  const r = await h.say('@tagbox hello there');
  const events = await h.untilDone(r.thread, 1, 120000);
  console.log('took', Date.now() - t0);
  for (const e of events) console.log(e.type, JSON.stringify(e.data).slice(0, 300));
  console.log(seen.map((s) => s.method + " " + s.url + " " + (s.key === "sk-ant-real-key-123" ? "REAL" : "placeholder")).join("\n"));
} finally { await h.close(); srv.close(); }
