// Package wszero is a zero-boilerplate WebSocket framework for pages that
// browsers open.
//
// A whole live app is a few handlers and one call:
//
//	package main
//
//	import "github.com/wszero/wszero"
//
//	func main() {
//		wszero.On("announce", func(c *wszero.Client, p struct{ Text string }) {
//			wszero.Broadcast("announce", wszero.Params{"text": p.Text})
//		})
//		wszero.RunServer(8000)
//	}
//
// Browsers send JSON messages such as {"op": "announce", "text": "hi"}; the
// "op" picks the handler registered with [On], and the other keys are bound
// to its parameter (a struct, or [Params]). A missing, misspelt or
// mistyped key never reaches the handler: the sender gets an "error"
// message that says what to fix. [Broadcast] and [BroadcastTo] send a
// message to every client, or to the members of a group that
// [Client.AddToGroup] put them in, encoded once for all. [RunServer] serves
// the ./static folder, the browser client (/wszero.js) and the WebSocket
// endpoint (/ws), and stops gracefully on Ctrl-C.
//
// # Two depths
//
// The package-level functions use the [Default] server, the way net/http's
// use DefaultServeMux. Applications make their own [Server] with [New],
// choose its limits with options, and mount it in any net/http mux, or
// serve it with [Server.Run] (as RunServer does, with a mux of their own
// through [RunHandler]), [Server.ListenAndServe] or, on a listener they
// opened, [Server.Serve]:
//
//	s := wszero.New(wszero.WithAllowedOrigins("localhost:5173"))
//	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
//	http.Handle("/game/", http.StripPrefix("/game", s))
//
// # The way of a message
//
// Each step has a file of its own. accept.go upgrades a request into a
// [Client], once its origin, the connection limits (admission.go) and
// [WithAuthenticate] allow it. The client's reader (read.go) reads each
// frame, applies the rate limit (ratelimit.go) and decodes and binds it
// (decode.go) into one message: its handler's parameter, or the words of
// what is wrong with it. loop.go hands the message to the handler loop,
// where dispatch.go runs the guards, then the handler, and answers with
// the reply or the error (crash.go words a handler's panic). write.go
// queues what the server sends to a client, and its writer writes the
// queue; conn.go gathers a batch into one system call and bounds what a
// peer may send, and frame.go frames a broadcast once for every member.
// handlers.go is the registry of ops, groups.go the groups and the
// fan-out, broker.go the reach beyond one process, keepalive.go the pings,
// server.go listening and [Server.Shutdown]. The protocol's strings are in
// internal/protocol, which the Go client and the browser client's build
// share.
//
// # Concurrency
//
// By default handlers, and the callbacks of [Every] and [After], run one at
// a time on one loop, in the order messages arrived, so they may share
// plain variables without locks. [Do] runs a function on that loop from
// anywhere else (an HTTP handler, a goroutine of the program's own) and
// waits for it. [WithParallelHandlers] runs different clients in parallel
// instead, each client's messages still in order.
//
// Every exported method of [Server] and [Client] is safe to call from any
// goroutine. Sending and broadcasting never block: each client has a
// bounded queue, written by its own writer, and a client that cannot keep
// up is disconnected rather than slowing anyone else. A handler must not
// call [Server.Shutdown] or [Do]: both wait for the loop it is running on.
//
// # Wire protocol
//
// One JSON object per text frame:
//
//	client → server  {"op": "announce", "text": "hi"}          call the handler for "announce"
//	client → server  {"op": "add", "a": 1, "b": 2, "_ref": 7}  a call: the sender wants a reply
//	server → client  {"op": "announce", "text": "hi"}          a message for the page's "announce" handler
//	server → client  {"op": "_reply", "_ref": 7, "result": 3}  the reply to call 7
//	server → client  {"op": "error", "msg": "…", "for": "add", "_ref": 7}
//	                                                            an error; "_ref" only when it answers a call
//	server → client  {"op": "eval_js", "script": "…"}          run JavaScript in the page
//	server → client  {"op": "_ping", "every": 20000}           alive; answered by {"op": "_pong"}
//	server → client  {"op": "_reload"}                         a static file changed (under RunServer)
//
// Keys beginning with "_" belong to the protocol and never reach handlers;
// a client may not send "connect", "disconnect", "client_away",
// "client_back", "group_join", "group_leave" or an op starting with "_".
// The README has the whole table, the close codes and the HTTP refusals.
//
// # Groups and the cluster
//
// Clients join groups (Client.AddToGroup); Server.BroadcastTo reaches a
// group, Client.BroadcastOthers and Client.BroadcastToOthers everyone but
// the sender, Server.SendToOne one member in turn (a pool of workers), and
// Server.SendTo one client by its ID. Server.Presence lists a group's
// members, Server.OnPresence and the "group_join" and "group_leave"
// handlers hear them come and go. With WithBroker (NATS or Redis), all of
// these work over every server of a cluster, in the same words: see
// Broker, and package brokertest for checking a broker of your own.
//
// # Sessions
//
// A client whose connection drops and that comes back within the resume
// window (WithResumeWindow, 2 minutes) is the same Client: the browser
// and Go clients offer the subprotocol "wszero.json", the server's first
// frame ({"op": "_session", …}) gives them an ID and a key, and a
// reconnection that sends {"op": "_resume", …} with them takes the
// session back, with what was missed either way delivered once and in
// order. The "client_away" and "client_back" handlers see it go and come
// back; "disconnect" runs only when it has left for good. See Client.Away,
// WithResumeWindow and WithResumeBuffer, and the README's protocol table.
//
// # Security
//
// By default only pages served by the server's own host may connect
// ([WithAllowedOrigins] names others), and every limit — message size,
// rate, send queue, connections in all and from one address, groups per
// client, handshake and idle time — has a default that an option changes.
// [WithAuthenticate] decides who may connect and [Client.Identity] tells
// handlers who they are; [WithGuard] and [WithOpGuard] decide who may send
// which op. [Server.ListenAndServeTLS] and [RunServerTLS] serve HTTPS.
// Never pass text from a client to [Client.EvalJS]. SECURITY.md in the
// repository has the threat model.
package wszero
