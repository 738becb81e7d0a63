import { createConnection, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Agent, FormData as UndiciFormData, fetch as undiciFetch, type Dispatcher, type RequestInit, type Response, type buildConnector } from 'undici';

/**
 * The server's only road to Slack: every connection is a CONNECT through the
 * workspace's listener at the Agent Proxy (a Unix socket), then TLS to the
 * proxy's interception, verified against the deployment CA. The proxy decides
 * the request and puts the token in; nothing here holds one.
 */
export interface SlackTransport {
  /** For undici's WebSocket (Socket Mode) and any undici request. */
  dispatcher: Dispatcher;
  /** undici's fetch over `dispatcher` (WebClient's `fetch`). */
  fetch: (input: string | URL, init?: RequestInit) => Promise<Response>;
  close(): Promise<void>;
}

export interface SlackTransportOptions {
  /** The workspace's listener (ProxyControl.openSlackListener). */
  socketPath: string;
  /** The deployment CA (ProxyControl.caCert()): the only one trusted here. */
  caPem: string;
  /** Told when the listener cannot be dialled (the proxy restarted: its listeners are gone). */
  onUnreachable?: () => void;
  /** From the dial to a usable TLS connection (default 10 s). */
  connectTimeoutMs?: number;
}

/** How much of a CONNECT answer's head is read before giving up on it. */
const MAX_CONNECT_HEAD = 16 * 1024;

export function openSlackTransport(options: SlackTransportOptions): SlackTransport {
  if (!options.caPem.includes('BEGIN CERTIFICATE')) throw new TypeError('openSlackTransport: caPem: expected the deployment CA certificate (PEM)');
  const dispatcher = new Agent({ connect: connector(options) });
  return {
    dispatcher,
    fetch: (input, init) => undiciFetch(input, { ...init, ...(init?.body ? { body: ownFormData(init.body) } : {}), dispatcher }),
    close: () => dispatcher.close(),
  };
}

function connector(options: SlackTransportOptions): buildConnector.connector {
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  return (target, callback) => {
    let settled = false;
    const done = (error: Error | null, socket?: Socket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) callback(error, null);
      else callback(null, socket!);
    };
    if (target.protocol !== 'https:' && target.protocol !== 'wss:') {
      return done(new Error(`slack transport: only https is sent through the Agent Proxy, not ${target.protocol}//${target.hostname}`));
    }
    const host = target.hostname;
    const port = target.port ? Number(target.port) : 443;
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const raw = createConnection(options.socketPath);
    let dialled = false;
    const timer = setTimeout(() => {
      raw.destroy();
      done(new Error(`slack transport: no usable connection to ${authority} through the Agent Proxy within ${timeoutMs} ms`));
    }, timeoutMs);
    raw.once('error', (error: NodeJS.ErrnoException) => {
      if (!dialled && !settled) options.onUnreachable?.();
      done(new Error(`slack transport: the Agent Proxy's Slack listener ${options.socketPath} is unreachable (${error.code ?? error.message})`, { cause: error }));
    });
    raw.once('connect', () => {
      dialled = true;
      raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_CONNECT_HEAD) {
          raw.destroy();
          done(new Error(`slack transport: the Agent Proxy's answer to CONNECT ${authority} has an over-long head`));
        }
        return;
      }
      raw.off('data', onData);
      raw.off('end', onEnd);
      const status = /^HTTP\/1\.[01] (\d{3}) ?([^\r\n]*)/.exec(head.subarray(0, end).toString('latin1'));
      if (!status || status[1] !== '200') {
        raw.destroy();
        const said = status ? `${status[1]} ${status[2]}`.trim() : 'not HTTP';
        return done(new Error(`slack transport: the Agent Proxy refused CONNECT ${authority}: ${said}`));
      }
      // Nothing should follow the 200 before TLS; if something did, TLS reads it first.
      const rest = head.subarray(end + 4);
      if (rest.length) raw.unshift(rest);
      const tls = tlsConnect({ socket: raw, servername: host, ca: options.caPem, ALPNProtocols: ['http/1.1'], rejectUnauthorized: true });
      tls.once('secureConnect', () => {
        tls.removeListener('error', onTlsError);
        done(null, tls);
      });
      const onTlsError = (error: Error) => done(new Error(`slack transport: TLS with ${host} through the Agent Proxy failed: ${error.message}`, { cause: error }));
      tls.once('error', onTlsError);
    };
    const onEnd = () => done(new Error(`slack transport: the Agent Proxy closed the connection before answering CONNECT ${authority}`));
    raw.on('data', onData);
    raw.once('end', onEnd);
  };
}

/**
 * The Slack client builds multipart bodies with Node's global FormData, which
 * this undici's fetch does not recognise as one (it would send
 * "[object FormData]"): copied into undici's own.
 */
function ownFormData(body: NonNullable<RequestInit['body']>): NonNullable<RequestInit['body']> {
  if (!(body instanceof globalThis.FormData) || (body as unknown) instanceof UndiciFormData) return body;
  const form = new UndiciFormData();
  for (const [name, value] of (body as globalThis.FormData).entries() as Iterable<[string, string | File]>) {
    if (typeof value === 'string') form.append(name, value);
    else form.append(name, value, value.name);
  }
  return form;
}
