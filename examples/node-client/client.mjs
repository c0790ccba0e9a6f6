// A wszero client in plain JavaScript for Node, written from the protocol
// table in the README alone: one JSON object per text frame, "op" names the
// handler, "_ref" makes a call, "_reply" and "error" answer it.
//
//   node client.mjs ws://localhost:8000/ws
//
// (Node 22 has WebSocket built in; Node 20 needs --experimental-websocket.)

const url = process.argv[2] ?? "ws://localhost:8000/ws";
const socket = new WebSocket(url);
const pending = new Map();
let nextRef = 1;

// call sends {op, ...params, _ref} and resolves with the reply's result.
function call(op, params = {}) {
  const ref = nextRef++;
  socket.send(JSON.stringify({ ...params, op, _ref: ref }));
  return new Promise((resolve, reject) => pending.set(ref, { resolve, reject }));
}

socket.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  const waiting = pending.get(msg._ref);
  if (msg.op === "_reply" && waiting) {
    pending.delete(msg._ref);
    waiting.resolve(msg.result);
  } else if (msg.op === "error" && waiting) {
    pending.delete(msg._ref);
    waiting.reject(new Error(msg.msg));
  } else if (msg.op === "_ping") {
    socket.send(JSON.stringify({ op: "_pong" }));
  } else {
    console.log(JSON.stringify(msg)); // a message for this client: print it
  }
};

socket.onopen = async () => {
  console.log("sum " + (await call("add", { a: 2, b: 3 })));
  try {
    await call("add", { a: 2 });
  } catch (err) {
    console.log("error " + err.message);
  }
  socket.send(JSON.stringify({ op: "say", text: "hello from Node" }));
};

socket.onclose = (event) => process.exit(event.code === 1000 || event.code === 1001 ? 0 : 1);
