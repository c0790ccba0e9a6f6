// The benchmark's application on Socket.IO 4, the Node peer of the Go
// servers in ../cmd/server: an "echo" event is answered with the same
// event, and a "pub" event is sent to every connected client as "msg".
// Each event carries the object the Go peers exchange, op included:
//
//	client: 42["echo",{"op":"echo","seq":N,"text":T}]   answer: the same
//	client: 42["pub",{"op":"pub","seq":N,"ts":T,"text":X}]
//	every client: 42["msg",{"op":"msg","seq":N,"ts":T,"text":X}]
//
// WebSocket transport only (no HTTP long-polling), no compression. It
// listens on 127.0.0.1, on a free port, and prints "LISTEN 127.0.0.1:PORT"
// once it accepts connections, as the Go servers do.
//
//	npm ci && node server.mjs [--ping-interval MS] [--ping-timeout MS]
//
// The ping options (Socket.IO's defaults: 25000 and 20000) let a test see
// that its client answers the server's pings.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: args } = parseArgs({
  options: {
    "ping-interval": { type: "string", default: "25000" },
    "ping-timeout": { type: "string", default: "20000" },
  },
});

const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  pingInterval: Number(args["ping-interval"]),
  pingTimeout: Number(args["ping-timeout"]),
});

io.on("connection", (socket) => {
  socket.on("echo", (m) => socket.emit("echo", m));
  socket.on("pub", (m) => io.emit("msg", { op: "msg", seq: m.seq, ts: m.ts, text: m.text }));
});

http.listen(0, "127.0.0.1", () => {
  const { address, port } = http.address();
  console.log(`LISTEN ${address}:${port}`);
});
