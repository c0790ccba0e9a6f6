// The wszero browser client: one WebSocket per page, routed by "op".
// Both bundles (the classic script and the ES module) are built from here.

// The public types are declared once, in wszero.d.ts, which is shipped as
// the module's types; the code here is checked against them.
import {
  AckAfterMillis, AckBytes, AckEvery, CloseReconnecting, KeyEvery, KeyFor, KeyGot, KeyID, KeyKey, KeyMissed, KeyMsg, KeyOp, KeyRef, KeyResult, KeyResumed, KeyScript, KeySeen, KeySent, KeyWhy,
  OpAck, OpError, OpEvalJS, OpPing, OpPong, OpReload, OpReply, OpResume, OpSession, ReservedPrefix, SubprotocolJSON, SubprotocolResume,
} from "./protocol";
import type { CallOptions, ConnectionState, Handler, Message, StateDetail } from "./wszero";
export type { CallOptions, ConnectionState, Handler, Message, StateDetail };

/** The error a call rejects with; message is the server's words. */
export class CallError extends Error {
  readonly op: string;
  constructor(message: string, op: string) {
    super(message);
    this.name = "CallError";
    this.op = op;
  }
}

/** How many messages wait while disconnected before the oldest are dropped. */
const MAX_QUEUE = 1000;
/** Reconnection backoff: first delay, cap, in milliseconds. */
const BACKOFF_FIRST = 250;
const BACKOFF_CAP = 10000;
/** The server pings this often unless its _ping says otherwise (wszero.DefaultPingInterval). */
const DEFAULT_PING_EVERY = 20000;
/** A connection silent for this many pings' time is taken for dead. */
const SILENCE_PINGS = 1.5;
/** Close codes (RFC 6455): the page's own goodbye, and a server's that ends the session. */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;

/**
 * The ops a session does not number (protocol.Unnumbered on the server):
 * the session protocol's own and the keepalive's. Both sides number every
 * other message of a session from 0, in the order sent.
 */
const UNNUMBERED = new Set([OpSession, OpResume, OpAck, OpPing, OpPong]);

/**
 * HANDLERS maps an op to the function that handles messages of that op:
 * HANDLERS.announce = (msg) => { … }.
 */
export const HANDLERS: Record<string, Handler> = Object.assign(Object.create(null) as Record<string, Handler>, {
  // No prototype: an op named "constructor" or "toString" finds no handler of Object's.
  [OpEvalJS](msg: { script?: unknown }) {
    // eval_js exists for teaching: the server decides what runs here.
    (0, eval)(String(msg[KeyScript]));
  },
});

/** ownHandler is the page's own handler for op: never one an object inherits. */
function ownHandler(op: string): Handler | undefined {
  return Object.prototype.hasOwnProperty.call(HANDLERS, op) && typeof HANDLERS[op] === "function" ? HANDLERS[op] : undefined;
}

const listeners = new Map<string, Set<Handler>>();
const stateListeners = new Set<(state: ConnectionState, detail: StateDetail) => void>();

interface PendingCall {
  op: string;
  resolve: (value: any) => void;
  reject: (err: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
  sent: boolean; // written to a socket (else still queued)
}

const pending = new Map<number, PendingCall>();
let nextRef = 1;

/** A message waiting for the connection: its JSON, and its call's ref. */
interface Queued {
  text: string;
  ref?: number;
}

let url: string | null = null;
let socket: WebSocket | null = null;
let state: ConnectionState = "closed";
let queue: Queued[] = [];
let droppedWarned = false;
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let silenceTimer: ReturnType<typeof setTimeout> | undefined;
let silenceLimit = DEFAULT_PING_EVERY * SILENCE_PINGS;
let stopped = false;
let failureWarned = false; // since the last open, a failure to connect has been explained
let defaultURL = "";

// The session: what lets the page come back as the same client after its
// connection drops. It lives in memory only: a reloaded page is a new client.
/** The ID and key of the server's last _session; null when there is none to resume. */
let session: { id: string; key: string } | null = null;
/** The current socket speaks sessions: its messages are numbered. */
let numbered = false;
/** The current socket may carry the page's messages: it is open, and a session socket has had its _session. */
let ready = false;
/** How many numbered messages have arrived in the session. */
let seen = 0;
/** How many of those the server has not been told of, and the timer that will tell it. */
let unacked = 0;
let unackedBytes = 0;
let ackTimer: ReturnType<typeof setTimeout> | undefined;
/** The numbered messages sent in the session that the server has not acknowledged, from number outboxFirst on. */
let outbox: string[] = [];
let outboxFirst = 0;
/**
 * The last attempt offered sessions and failed before it opened. Browsers
 * fail the handshake of a server that answers no subprotocol (one that
 * does not speak sessions), which the page cannot tell from a server that
 * is down; so a page with no session to resume makes its next attempt
 * without offering sessions, as pages did before them.
 */
let offerFailed = false;

/** setDefaultURL records where to connect when connect() is not called. */
export function setDefaultURL(u: string): void {
  defaultURL = u;
}

/** wsURL turns a page-relative or http(s) address into a ws(s) one. */
export function wsURL(address: string, base: string = location.href): string {
  const u = new URL(address, base);
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  return u.href;
}

/**
 * connect opens the connection to url (by default the "/ws" endpoint of the
 * server that served the script). Pages served from another origin, such
 * as a Vite dev server, call it with the server's address first thing.
 */
export function connect(address?: string): void {
  const next = wsURL(address ?? defaultURL);
  if (next === url && socket && !stopped) return;
  if (next !== url) {
    // Another address replaces the old connection, and its session: the
    // old server's session means nothing to another.
    if (socket) dropSocket(CLOSE_NORMAL);
    forgetSession();
  }
  url = next;
  stopped = false;
  clearTimeout(retryTimer);
  open();
}

/** close closes the connection for good, ending the session; connect() opens it again. */
export function close(): void {
  stopped = true;
  clearTimeout(retryTimer);
  if (socket) dropSocket(CLOSE_NORMAL);
  forgetSession();
  setState("closed", {});
}

// A page that is closed, reloaded or left says goodbye on purpose (1000),
// so that the server ends its session at once instead of keeping it for a
// resume that cannot come; a page the browser brings back from its
// back-forward cache connects again, as a new client.
if (typeof addEventListener === "function") {
  addEventListener("pagehide", () => {
    if (socket && !stopped) close();
  });
  addEventListener("pageshow", (event: PageTransitionEvent) => {
    if (event.persisted && url !== null && stopped) connect(url);
  });
}

/** ensureConnected connects to the default address unless connect() ran. */
function ensureConnected(): void {
  if (url === null && !stopped) connect();
}

/** send_message sends msg, an object with an "op"; while disconnected it waits in a queue. */
export function send_message(msg: Message): void {
  if (typeof msg !== "object" || msg === null || typeof msg.op !== "string" || msg.op === "") {
    console.error('wszero: send_message needs an object with an "op", like send_message({op: "hello"}); got', msg);
    return;
  }
  if (msg.op.startsWith(ReservedPrefix)) {
    console.error(`wszero: "${msg.op}": ops starting with "${ReservedPrefix}" belong to the wszero protocol; choose a name without the "${ReservedPrefix}"`);
    return;
  }
  let text: string;
  try {
    text = JSON.stringify(msg);
  } catch (err) {
    console.error(`wszero: the "${msg.op}" message cannot be sent as JSON:`, err);
    return;
  }
  ensureConnected();
  const q: Queued = { text, ref: typeof msg[KeyRef] === "number" ? msg[KeyRef] : undefined };
  if (socket && ready && socket.readyState === WebSocket.OPEN) {
    transmit(socket, q);
    return;
  }
  queue.push(q);
  if (queue.length > MAX_QUEUE) {
    failDropped(queue.shift()!);
    if (!droppedWarned) {
      console.warn(`wszero: more than ${MAX_QUEUE} messages are waiting for the connection, so the oldest are being dropped`);
      droppedWarned = true;
    }
  }
}

/**
 * transmit writes a message to s, the current socket. In a session that
 * can be resumed, it is numbered and kept until the server acknowledges
 * it, to be sent again after a resume if the server never got it.
 */
function transmit(s: WebSocket, q: Queued): void {
  s.send(q.text);
  if (numbered && session) outbox.push(q.text);
  if (q.ref !== undefined) {
    const p = pending.get(q.ref);
    if (p) p.sent = true;
  }
}

/**
 * call sends {op, ...params} as a call and resolves with the handler's
 * result, or rejects with a CallError carrying the server's message.
 * Calls made while disconnected wait for the connection. A call already
 * sent when the connection drops waits for the session to resume, and is
 * answered then; it rejects when the server cannot resume the session.
 */
export function call<T = unknown>(op: string, params?: Record<string, unknown>, options?: CallOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (typeof op !== "string" || op === "") {
      reject(new CallError('call needs an op, like call("add", {a: 1, b: 2})', String(op)));
      return;
    }
    if (op.startsWith(ReservedPrefix)) {
      reject(new CallError(`"${op}": ops starting with "${ReservedPrefix}" belong to the wszero protocol; choose a name without the "${ReservedPrefix}"`, op));
      return;
    }
    const ref = nextRef++;
    const p: PendingCall = { op, resolve, reject, sent: false };
    if (options?.timeout) {
      p.timer = setTimeout(() => {
        pending.delete(ref);
        reject(new CallError(`the server did not answer "${op}" within ${options.timeout} ms`, op));
      }, options.timeout);
    }
    pending.set(ref, p);
    send_message({ ...params, [KeyOp]: op, [KeyRef]: ref });
  });
}

/** failDropped rejects the call whose message was dropped from the queue, if it was one. */
function failDropped(q: Queued): void {
  const p = q.ref === undefined ? undefined : pending.get(q.ref);
  if (p) {
    pending.delete(q.ref!);
    clearTimeout(p.timer);
    p.reject(new CallError(`"${p.op}" was never sent: more than ${MAX_QUEUE} messages waited for the connection`, p.op));
  }
}

/** rejectSent rejects every call written to a socket and not yet answered, with words(op). */
function rejectSent(words: (op: string) => string): void {
  for (const [ref, p] of pending) {
    if (p.sent) {
      pending.delete(ref);
      clearTimeout(p.timer);
      p.reject(new CallError(words(p.op), p.op));
    }
  }
}

/** on adds fn as a handler for op beside HANDLERS[op], and returns a function that removes it. */
export function on<T = any>(op: string, fn: Handler<T>): () => void {
  ensureConnected();
  let set = listeners.get(op);
  if (!set) listeners.set(op, (set = new Set()));
  set.add(fn as Handler);
  return () => {
    set!.delete(fn as Handler);
  };
}

/**
 * onState calls fn with the connection's current state at once, and again
 * whenever the state changes; it returns a function that stops it. (At
 * once, so that a UI that subscribes late never shows a stale state.)
 */
export function onState(fn: (state: ConnectionState, detail: StateDetail) => void): () => void {
  ensureConnected();
  stateListeners.add(fn);
  try {
    fn(state, {});
  } catch (err) {
    console.error("wszero: an onState listener failed:", err);
  }
  return () => {
    stateListeners.delete(fn);
  };
}

/** connectionState returns the connection's current state. */
export function connectionState(): ConnectionState {
  return state;
}

function setState(next: ConnectionState, detail: StateDetail): void {
  if (next === state && next !== "reconnecting") return;
  state = next;
  for (const fn of [...stateListeners]) {
    try {
      fn(next, detail);
    } catch (err) {
      console.error("wszero: an onState listener failed:", err);
    }
  }
}

/**
 * newSession starts counting a session afresh: next (or null, when the
 * server cannot resume it) is its ID and key.
 */
function newSession(next: { id: string; key: string } | null): void {
  session = next;
  seen = unacked = unackedBytes = outboxFirst = 0;
  outbox = [];
  clearTimeout(ackTimer);
  ackTimer = undefined;
}

/**
 * forgetSession ends the session on the page's side: the calls sent in it
 * can no longer be answered, and reject.
 */
function forgetSession(): void {
  newSession(null);
  rejectSent(closedBeforeAnswer);
}

/** closedBeforeAnswer is what a call sent on a connection that closed, with no session to resume, rejects with. */
function closedBeforeAnswer(op: string): string {
  return `the connection closed before the server answered "${op}"`;
}

/** acknowledged lets go of the messages the server says it has: those numbered below got. */
function acknowledged(got: unknown): void {
  if (typeof got !== "number" || !(got > outboxFirst)) return;
  const n = Math.min(got - outboxFirst, outbox.length);
  outbox.splice(0, n);
  outboxFirst += n;
}

/** received counts a numbered message of size characters, and tells the server every AckEvery (or AckBytes), or AckAfterMillis after the first. */
function received(size: number): void {
  seen++;
  if (!session) return; // a session the server cannot resume keeps nothing to let go of
  unacked++;
  unackedBytes += size;
  if (unacked >= AckEvery || unackedBytes >= AckBytes) sendAck();
  else if (ackTimer === undefined) ackTimer = setTimeout(sendAck, AckAfterMillis);
}

/** sendAck tells the server how many numbered messages have arrived, when it can hear it. */
function sendAck(): void {
  clearTimeout(ackTimer);
  ackTimer = undefined;
  if (!socket || !ready || !session || socket.readyState !== WebSocket.OPEN) return; // again once resumed
  unacked = unackedBytes = 0;
  socket.send(JSON.stringify({ [KeyOp]: OpAck, [KeySeen]: seen }));
}

function open(): void {
  setState(attempt === 0 ? "connecting" : "reconnecting", {});
  // A session to resume is offered in the handshake, and named in the
  // first message; a new one only says that the page speaks sessions.
  const resume = session;
  const offer = resume !== null || !offerFailed;
  offerFailed = false;
  let s: WebSocket;
  try {
    s = new WebSocket(url!, resume ? [SubprotocolJSON, SubprotocolResume] : offer ? [SubprotocolJSON] : []);
  } catch (err) {
    console.error(`wszero: cannot connect to ${url}:`, err);
    scheduleReconnect({});
    return;
  }
  socket = s;
  ready = numbered = false;
  let opened = false;
  s.onopen = () => {
    opened = true;
    droppedWarned = false;
    failureWarned = false;
    // Each server says how often it pings; until this one has, expect the default.
    silenceLimit = DEFAULT_PING_EVERY * SILENCE_PINGS;
    heardFromServer(s);
    if (s.protocol !== SubprotocolJSON) {
      // A server that does not speak sessions: nothing sent before is resumed.
      if (session) forgetSession();
      begin(s, { resumed: false });
      return;
    }
    numbered = true;
    // sent: what follows from the server's got on comes again, and the rate limit lets it through.
    if (resume) s.send(JSON.stringify({ [KeyOp]: OpResume, [KeyID]: resume.id, [KeyKey]: resume.key, [KeySeen]: seen, [KeySent]: outboxFirst + outbox.length }));
    // Nothing more until the server's _session says who the page is.
  };
  s.onmessage = (event) => {
    heardFromServer(s);
    const text = event.data;
    let msg: Message | undefined;
    let parsed = true;
    try {
      msg = JSON.parse(text);
    } catch {
      parsed = false;
    }
    const valid = parsed && opIsTheFirst(text, msg!);
    // The server numbered every frame but its session's and keepalive's
    // own: one the page cannot read or drops is counted all the same.
    if (numbered && !(valid && UNNUMBERED.has(msg!.op))) received(text.length);
    if (!parsed) {
      console.error("wszero: the server sent something that is not JSON:", text);
      return;
    }
    if (!valid) {
      console.error("wszero: a frame whose op is not the one it begins with was dropped (a wszero server sends one op, first):", text);
      return;
    }
    if (msg!.op === OpSession) {
      if (numbered && !ready) sessionBegins(s, msg!);
      return;
    }
    if (msg!.op === OpAck) {
      acknowledged(msg![KeyGot]);
      return;
    }
    dispatch(msg!);
  };
  s.onclose = (event) => {
    if (socket !== s) return;
    // A server that closes with 1000 (Client.Close) or 1001 (shutting
    // down) has ended the session: there is none to resume.
    const ended = event.code === CLOSE_NORMAL || event.code === CLOSE_GOING_AWAY;
    offerFailed = offer && !opened;
    dropSocket();
    if (ended && session) forgetSession();
    if (event.reason) {
      console.warn(`wszero: the server closed the connection: ${event.reason} (code ${event.code})`);
    } else if (!opened && !failureWarned) {
      failureWarned = true; // once until it works again: the browser reports each attempt itself
      console.warn(`wszero: cannot connect to ${s.url}; trying again until it works. Is the server running?` + originHint(s.url));
    }
    if (!stopped) scheduleReconnect({ code: event.code, reason: event.reason });
  };
}

/**
 * sessionBegins reads the server's _session, the first message on a
 * session socket: the page's session resumed, or a new one.
 */
function sessionBegins(s: WebSocket, msg: Message): void {
  const id = msg[KeyID], key = msg[KeyKey], why = msg[KeyWhy];
  if (typeof id !== "string" || typeof key !== "string") {
    console.error("wszero: the server's first message does not say which session this is:", msg);
  }
  const next = typeof id === "string" && typeof key === "string" && key !== "" ? { id, key } : null;
  if (msg[KeyResumed] === true && session) {
    // The same client as before: what the server did not get goes again,
    // with the numbers it had, before what waited for the connection.
    session = next;
    acknowledged(msg[KeyGot]);
    const missed = typeof msg[KeyMissed] === "number" ? msg[KeyMissed] : 0;
    for (const text of outbox) s.send(text);
    if (!session) outbox = [];
    begin(s, { resumed: true, missed });
    if (unacked > 0 && ackTimer === undefined) ackTimer = setTimeout(sendAck, AckAfterMillis);
    return;
  }
  // A new session: the calls sent in the old one will never be answered.
  newSession(next);
  rejectSent((op) =>
    `the connection was lost before the server answered "${op}", and the server could not resume the session` +
    (typeof why === "string" && why ? `: ${why}` : ""));
  begin(s, typeof why === "string" && why ? { resumed: false, why } : { resumed: false });
}

/** begin opens s to the page's messages: the queue goes first, then the state is "open". */
function begin(s: WebSocket, detail: StateDetail): void {
  ready = true;
  attempt = 0;
  const waiting = queue;
  queue = [];
  for (const q of waiting) transmit(s, q);
  setState("open", detail);
}

/**
 * dropSocket detaches the current socket, closing it with code when it is
 * still open (CloseReconnecting by default: the session stays, to be
 * resumed). Without a session to resume, the calls sent on it fail.
 */
function dropSocket(code: number = CloseReconnecting): void {
  const s = socket;
  socket = null;
  ready = numbered = false;
  clearTimeout(silenceTimer);
  clearTimeout(ackTimer);
  ackTimer = undefined;
  if (s) {
    s.onopen = s.onmessage = s.onclose = null;
    if (s.readyState === WebSocket.CONNECTING || s.readyState === WebSocket.OPEN) {
      s.close(code, code === CLOSE_NORMAL ? "closed by the page" : "reconnecting");
    }
  }
  if (!session) rejectSent(closedBeforeAnswer);
}

function scheduleReconnect(detail: StateDetail): void {
  const ceiling = Math.min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** attempt);
  const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2)); // jitter: half to all of it
  attempt++;
  setState("reconnecting", { ...detail, retryIn: delay });
  retryTimer = setTimeout(open, delay);
}

/** originHint explains, for a server on another host, that it must allow this page. */
function originHint(address: string): string {
  let host = "";
  try {
    host = new URL(address).host;
  } catch {
    return "";
  }
  if (location.origin === "null") {
    // Opened from a file (or in a sandboxed frame): the page has no origin a server could allow by name.
    return ` This page was opened from a file: open the address the server printed (like http://localhost:8000) instead of the file.`;
  }
  if (host === location.host) {
    // The page's own server: when it is not wszero's (a dev server), it must forward the endpoint.
    return ` If this page comes from another server than wszero's (a Vite dev server, say), that server must forward ${new URL(address).pathname} to wszero's (Vite: server.proxy in vite.config.ts), or the page must call connect("ws://localhost:8000/ws") with wszero's address.`;
  }
  return ` A page from another address (this one is ${location.origin}) may connect only if the server allows it: wszero.WithAllowedOrigins("${location.host}").`;
}

/**
 * heardFromServer restarts the silence timer of s, the current socket: a
 * connection that stays silent past it is taken for dead, and replaced.
 */
function heardFromServer(s: WebSocket): void {
  clearTimeout(silenceTimer);
  if (silenceLimit <= 0) return;
  silenceTimer = setTimeout(() => {
    if (socket !== s) return;
    console.warn(`wszero: no word from the server for ${Math.round(silenceLimit / 100) / 10} s; reconnecting`);
    dropSocket(CloseReconnecting);
    scheduleReconnect({});
  }, silenceLimit);
}

/** firstOpPattern matches the op a server's frame begins with: {"op":"…". */
const firstOpPattern = new RegExp(`^\\{"${KeyOp}":("(?:[^"\\\\]|\\\\.)*")`);

/**
 * opIsTheFirst reports whether msg, parsed from text, has the op that text
 * begins with. JSON.parse keeps the last of duplicate keys, so a frame
 * with a second op (however it is spelled) would otherwise choose its own
 * handler: eval_js, or a forged _reply.
 */
function opIsTheFirst(text: string, msg: Message): boolean {
  const m = firstOpPattern.exec(text);
  if (!m || typeof msg !== "object" || msg === null) return false;
  try {
    return JSON.parse(m[1]) === msg[KeyOp];
  } catch {
    return false;
  }
}

function dispatch(msg: Message): void {
  const op = msg.op;
  if (op === OpPing) {
    if (socket && typeof msg[KeyEvery] === "number" && msg[KeyEvery] >= 0) {
      silenceLimit = msg[KeyEvery] * SILENCE_PINGS; // 0: the server does not ping, so silence means nothing
      heardFromServer(socket); // the timer started before this message set the limit
    }
    socket?.send(JSON.stringify({ [KeyOp]: OpPong }));
    return;
  }
  if (op === OpReload) {
    location.reload(); // RunServer saw a static file change
    return;
  }
  if (op === OpReply || (op === OpError && msg[KeyRef] !== undefined)) {
    const p = pending.get(msg[KeyRef] as number);
    if (p) {
      pending.delete(msg[KeyRef] as number);
      clearTimeout(p.timer);
      if (op === OpReply) p.resolve(msg[KeyResult]);
      else p.reject(new CallError(String(msg[KeyMsg]), p.op));
      return;
    }
    if (op === OpReply) return; // the answer to a call that timed out: nobody waits for it
  }
  const handler = ownHandler(op);
  const extra = listeners.get(op);
  if (!handler && (!extra || extra.size === 0)) {
    if (op === OpError) {
      console.error(`wszero: ${msg[KeyMsg]}` + (msg[KeyFor] ? ` (answering your "${msg[KeyFor]}" message)` : ""));
      return;
    }
    const known = [...new Set([
      ...Object.keys(HANDLERS).filter((k) => k !== OpEvalJS),
      ...[...listeners].filter(([, fns]) => fns.size > 0).map(([k]) => k),
    ])];
    console.warn(
      `wszero: the server sent a "${op}" message, but this page has no handler for it. ` +
        `Add one: HANDLERS.${/^[A-Za-z_$][\w$]*$/.test(op) ? op : `["${op}"]`} = function (msg) { … }. ` +
        (known.length ? `Handlers on this page: ${known.join(", ")}.` : "This page has no handlers yet."),
    );
    return;
  }
  for (const fn of [handler, ...(extra ?? [])]) {
    if (!fn) continue;
    try {
      fn(msg);
    } catch (err) {
      console.error(`wszero: the "${op}" handler failed:`, err);
    }
  }
}
