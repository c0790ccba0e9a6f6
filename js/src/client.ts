// The wszero browser client: one WebSocket per page, routed by "op".
// Both bundles (the classic script and the ES module) are built from here.

// The public types are declared once, in wszero.d.ts, which is shipped as
// the module's types; the code here is checked against them.
import { KeyEvery, KeyFor, KeyMsg, KeyOp, KeyRef, KeyResult, KeyScript, OpEvalJS, OpError, OpPing, OpPong, OpReload, OpReply } from "./protocol";
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

let url: string | null = null;
let socket: WebSocket | null = null;
let state: ConnectionState = "closed";
let queue: string[] = [];
let droppedWarned = false;
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let silenceTimer: ReturnType<typeof setTimeout> | undefined;
let silenceLimit = DEFAULT_PING_EVERY * SILENCE_PINGS;
let stopped = false;
let failureWarned = false; // since the last open, a failure to connect has been explained
let defaultURL = "";

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
  url = next;
  stopped = false;
  if (socket) dropSocket(); // a new address replaces the old connection
  clearTimeout(retryTimer);
  open();
}

/** close closes the connection for good; connect() opens it again. */
export function close(): void {
  stopped = true;
  clearTimeout(retryTimer);
  if (socket) {
    const s = socket;
    dropSocket();
    s.close(1000, "closed by the page");
  }
  setState("closed", {});
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
  let text: string;
  try {
    text = JSON.stringify(msg);
  } catch (err) {
    console.error(`wszero: the "${msg.op}" message cannot be sent as JSON:`, err);
    return;
  }
  ensureConnected();
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(text);
    markSent(msg);
    return;
  }
  queue.push(text);
  if (queue.length > MAX_QUEUE) {
    failDropped(queue.shift()!);
    if (!droppedWarned) {
      console.warn(`wszero: more than ${MAX_QUEUE} messages are waiting for the connection, so the oldest are being dropped`);
      droppedWarned = true;
    }
  }
}

/**
 * call sends {op, ...params} as a call and resolves with the handler's
 * result, or rejects with a CallError carrying the server's message.
 * Calls made while disconnected wait for the connection; a call already
 * sent when the connection drops rejects.
 */
export function call<T = unknown>(op: string, params?: Record<string, unknown>, options?: CallOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (typeof op !== "string" || op === "") {
      reject(new CallError('call needs an op, like call("add", {a: 1, b: 2})', String(op)));
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
function failDropped(text: string): void {
  let ref: unknown;
  try {
    ref = JSON.parse(text)[KeyRef];
  } catch {
    return;
  }
  const p = pending.get(ref as number);
  if (p) {
    pending.delete(ref as number);
    clearTimeout(p.timer);
    p.reject(new CallError(`"${p.op}" was never sent: more than ${MAX_QUEUE} messages waited for the connection`, p.op));
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

function markSent(msg: Message): void {
  if (typeof msg[KeyRef] === "number") {
    const p = pending.get(msg[KeyRef]);
    if (p) p.sent = true;
  }
}

function open(): void {
  setState(attempt === 0 ? "connecting" : "reconnecting", {});
  let s: WebSocket;
  try {
    s = new WebSocket(url!);
  } catch (err) {
    console.error(`wszero: cannot connect to ${url}:`, err);
    scheduleReconnect({});
    return;
  }
  socket = s;
  let opened = false;
  s.onopen = () => {
    opened = true;
    attempt = 0;
    droppedWarned = false;
    failureWarned = false;
    setState("open", {});
    // Each server says how often it pings; until this one has, expect the default.
    silenceLimit = DEFAULT_PING_EVERY * SILENCE_PINGS;
    heardFromServer(s);
    const waiting = queue;
    queue = [];
    for (const text of waiting) {
      s.send(text);
      try {
        markSent(JSON.parse(text));
      } catch {
        // it was ours; it parses
      }
    }
  };
  s.onmessage = (event) => {
    heardFromServer(s);
    let msg: Message;
    try {
      msg = JSON.parse(event.data);
    } catch {
      console.error("wszero: the server sent something that is not JSON:", event.data);
      return;
    }
    if (!opIsTheFirst(event.data, msg)) {
      console.error("wszero: a frame whose op is not the one it begins with was dropped (a wszero server sends one op, first):", event.data);
      return;
    }
    dispatch(msg);
  };
  s.onclose = (event) => {
    if (socket !== s) return;
    dropSocket();
    if (event.reason) {
      console.warn(`wszero: the server closed the connection: ${event.reason} (code ${event.code})`);
    } else if (!opened && !failureWarned) {
      failureWarned = true; // once until it works again: the browser reports each attempt itself
      console.warn(`wszero: cannot connect to ${s.url}; trying again until it works. Is the server running?` + originHint(s.url));
    }
    if (!stopped) scheduleReconnect({ code: event.code, reason: event.reason });
  };
}

/** dropSocket detaches the current socket and fails the calls sent on it. */
function dropSocket(): void {
  const s = socket;
  socket = null;
  clearTimeout(silenceTimer);
  if (s) {
    s.onopen = s.onmessage = s.onclose = null;
    if (s.readyState === WebSocket.CONNECTING || s.readyState === WebSocket.OPEN) s.close();
  }
  for (const [ref, p] of pending) {
    if (p.sent) {
      pending.delete(ref);
      clearTimeout(p.timer);
      p.reject(new CallError(`the connection closed before the server answered "${p.op}"`, p.op));
    }
  }
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
    dropSocket();
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
