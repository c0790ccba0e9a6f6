// Types for the wszero browser client's ES module (/wszero.mjs).
// Written by hand beside src/client.ts; the React example type-checks against it.

/** A message: an object with an "op" that names its handler. */
export interface Message {
  op: string;
  [key: string]: unknown;
}

/** A handler for messages of one op; T describes the message's other keys. */
export type Handler<T = any> = (msg: T & { op: string }) => void;

/** The connection's state, as a UI would show it. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/**
 * Details that come with a state change. "reconnecting" may carry code,
 * reason and retryIn; "open" always carries resumed, and missed or why.
 */
export interface StateDetail {
  /** The close code the server gave, when it closed the connection. */
  code?: number;
  /** The server's reason in words ("message too big: the limit is 65536 bytes"). */
  reason?: string;
  /** Milliseconds until the next attempt, when reconnecting. */
  retryIn?: number;
  /**
   * With "open": true when the page came back as the same client after its
   * connection dropped (the same ID, groups and state on the server; what
   * was sent to it meanwhile follows, and calls in flight are answered);
   * false on the first connection, and when the server could not resume
   * the session (it restarted, or the resume window passed): the page is
   * then a new client, and the calls it had sent have rejected.
   */
  resumed?: boolean;
  /** With "open" and resumed true: how many messages the server sent while the page was away, delivered now. */
  missed?: number;
  /** With "open" and resumed false: why the server could not resume the session, in words. */
  why?: string;
}

/** Options for call. */
export interface CallOptions {
  /** Reject when no answer comes within this many milliseconds (default: wait). */
  timeout?: number;
}

/** The error a call rejects with; message is the server's words. */
export declare class CallError extends Error {
  /** The op that was called. */
  readonly op: string;
  constructor(message: string, op: string);
}

/** HANDLERS maps an op to the function that handles messages of that op. */
export declare const HANDLERS: Record<string, Handler>;

/** send_message sends msg; while disconnected it waits in a queue (the oldest dropped past 1000). */
export declare function send_message(msg: Message): void;

/**
 * call sends {op, ...params} as a call and resolves with the handler's
 * result, or rejects with a CallError carrying the server's message. A
 * call in flight when the connection drops is answered once the session
 * resumes; it rejects when the server cannot resume it.
 */
export declare function call<T = unknown>(op: string, params?: Record<string, unknown>, options?: CallOptions): Promise<T>;

/** on adds fn as a handler for op, beside HANDLERS[op]; it returns a function that removes it. */
export declare function on<T = any>(op: string, fn: Handler<T>): () => void;

/**
 * onState calls fn with the connection's current state at once, and again
 * whenever the state changes; it returns a function that stops it. "open"
 * is reported after every connection, with detail.resumed saying whether
 * the page is still the same client.
 */
export declare function onState(fn: (state: ConnectionState, detail: StateDetail) => void): () => void;

/** connectionState returns the connection's current state. */
export declare function connectionState(): ConnectionState;

/**
 * connect opens the connection to a wszero server's endpoint
 * ("ws://localhost:8000/ws"); by default the page's own server.
 */
export declare function connect(url?: string): void;

/** close closes the connection for good, ending the session; connect() opens it again, as a new client. */
export declare function close(): void;
