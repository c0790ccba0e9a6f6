// Package protocol names the strings of wszero's wire protocol once, for
// the server, the Go client and the browser client's build: the ops the
// protocol itself uses, the keys it adds to messages, and the close codes
// the server sends. TypeScript renders them for js/src/protocol.ts, so the
// browser client's literals are these, not copies.
package protocol

import (
	"fmt"
	"strings"
)

// The ops the protocol itself uses. A client can never send connect,
// disconnect or an op starting with ReservedPrefix.
const (
	OpConnect    = "connect"    // raised by the server when a client arrives
	OpDisconnect = "disconnect" // raised by the server when a client leaves
	OpError      = "error"      // server → client: what went wrong, in words
	OpReply      = "_reply"     // server → client: the answer to a call
	OpPing       = "_ping"      // server → client when the connection is idle
	OpPong       = "_pong"      // client → server, answering _ping
	OpReload     = "_reload"    // server → client: a static file changed
	OpEvalJS     = "eval_js"    // server → browser: run a script (for teaching)
)

// The keys of messages. Keys starting with ReservedPrefix belong to the
// protocol and never reach handlers.
const (
	KeyOp     = "op"     // which handler a message is for
	KeyRef    = "_ref"   // names a call; its reply or error carries it back
	KeyResult = "result" // a _reply's result
	KeyMsg    = "msg"    // an error's words
	KeyFor    = "for"    // the op an error is about
	KeyEvery  = "every"  // a _ping's interval, in milliseconds
	KeyScript = "script" // an eval_js message's script
)

// ReservedPrefix starts the ops, keys and group names that belong to wszero.
const ReservedPrefix = "_"

// The close codes the server sends (RFC 6455, section 7.4.1), with the
// reason in words.
const (
	CloseNormal    = 1000 // Client.Close
	CloseGoingAway = 1001 // the server is shutting down, or the peer went silent
	ClosePolicy    = 1008 // too slow to read, or too fast to send
	CloseTooBig    = 1009 // a message over the size limit
)

// constant is one name of the protocol, as TypeScript renders it.
type constant struct{ name, value string }

var (
	ops = []constant{
		{"Connect", OpConnect}, {"Disconnect", OpDisconnect}, {"Error", OpError},
		{"Reply", OpReply}, {"Ping", OpPing}, {"Pong", OpPong}, {"Reload", OpReload}, {"EvalJS", OpEvalJS},
	}
	keys = []constant{
		{"Op", KeyOp}, {"Ref", KeyRef}, {"Result", KeyResult}, {"Msg", KeyMsg},
		{"For", KeyFor}, {"Every", KeyEvery}, {"Script", KeyScript},
	}
)

// TypeScript renders the protocol's ops and keys as the TypeScript module
// js/src/protocol.ts, which the browser client imports: one constant each
// (OpReply, KeyRef, …), which the bundler puts inline where they are used.
func TypeScript() string {
	var b strings.Builder
	b.WriteString("// Generated from internal/protocol by `go run ./js/build`: do not edit.\n")
	b.WriteString("// The strings of wszero's wire protocol, the same as the server's.\n\n")
	write := func(prefix, doc string, cs []constant) {
		fmt.Fprintf(&b, "// %s\n", doc)
		for _, c := range cs {
			fmt.Fprintf(&b, "export const %s%s = %q;\n", prefix, c.name, c.value)
		}
		b.WriteString("\n")
	}
	write("Op", "The ops the protocol itself uses.", ops)
	write("Key", "The keys the protocol adds to messages.", keys)
	fmt.Fprintf(&b, "// ReservedPrefix starts the ops and keys that belong to wszero.\nexport const ReservedPrefix = %q;\n", ReservedPrefix)
	return b.String()
}
