// The ES module: import { call, on, send_message } from "/wszero.mjs".
import { connect, connectionState, setDefaultURL, wsURL } from "./client";

export {
  HANDLERS,
  CallError,
  call,
  close,
  connect,
  connectionState,
  on,
  onState,
  send_message,
} from "./client";
export type { CallOptions, ConnectionState, Handler, Message, StateDetail } from "./client";

setDefaultURL(servedByWszero(import.meta.url) ? wsURL("ws", import.meta.url) : wsURL("/ws"));

/**
 * servedByWszero reports whether this module came from a wszero server,
 * as .../wszero.mjs: the endpoint then sits beside it (mounted under a
 * prefix too). Bundled into an app, or served from the disk by a dev
 * server (Vite's /@fs/…/js/dist/wszero.mjs, /node_modules/…), it is not,
 * and the endpoint is the page's own /ws, which the dev server forwards.
 */
function servedByWszero(moduleURL: string): boolean {
  const path = new URL(moduleURL).pathname;
  return /\/wszero\.mjs$/.test(path) && !/\/(@[^/]*|node_modules|dist)\//.test(path);
}

// A page that never calls connect() still connects, once its own module
// code has run (so that a connect(url) there wins).
queueMicrotask(() => {
  if (connectionState() === "closed") connect();
});
