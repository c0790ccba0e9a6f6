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

// Served by a wszero server as .../wszero.mjs, the endpoint sits beside it
// (mounted under a prefix too); bundled into an app, it is the page's /ws.
const here = import.meta.url;
setDefaultURL(/\/wszero\.mjs(\?.*)?$/.test(here) ? wsURL("ws", here) : wsURL("/ws"));

// A page that never calls connect() still connects, once its own module
// code has run (so that a connect(url) there wins).
queueMicrotask(() => {
  if (connectionState() === "closed") connect();
});
