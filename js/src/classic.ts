// The classic script: <script src="/wszero.js"></script> gives the page
// HANDLERS, send_message and call as globals, and connects at once.
import * as client from "./client";

const script = document.currentScript as HTMLScriptElement | null;
client.setDefaultURL(client.wsURL("ws", script?.src || location.href));

const w = window as any;
w.HANDLERS = client.HANDLERS;
w.send_message = client.send_message;
w.call = client.call;
w.wszero = client;
client.connect();
