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
	OpConnect    = "connect"     // raised by the server when a client arrives
	OpDisconnect = "disconnect"  // raised by the server when a client leaves for good
	OpAway       = "client_away" // raised by the server when a client's connection drops and it may resume
	OpJoin       = "group_join"  // raised by the server when a client joins a group
	OpLeave      = "group_leave" // raised by the server when a client leaves a group
	OpBack       = "client_back" // raised by the server when an away client has resumed
	OpError      = "error"       // server → client: what went wrong, in words
	OpReply      = "_reply"      // server → client: the answer to a call
	OpPing       = "_ping"       // server → client when the connection is idle
	OpPong       = "_pong"       // client → server, answering _ping
	OpReload     = "_reload"     // server → client: a static file changed
	OpEvalJS     = "eval_js"     // server → browser: run a script (for teaching)
	OpSession    = "_session"    // server → client, first on every connection of a session client: who it is, and whether it resumed
	OpResume     = "_resume"     // client → server, first on a connection that resumes a session
	OpAck        = "_ack"        // either way: how many numbered messages have arrived
)

// IsServerRaised reports whether op is one the server raises itself for
// its own handlers (connect, disconnect, client_away, client_back,
// group_join, group_leave): a
// client can never send it.
func IsServerRaised(op string) bool {
	switch op {
	case OpConnect, OpDisconnect, OpAway, OpBack, OpJoin, OpLeave:
		return true
	}
	return false
}

// RaisedWithGroup reports whether op is a server-raised op whose handler
// receives the group it is about: {"group": name}.
func RaisedWithGroup(op string) bool { return op == OpJoin || op == OpLeave }

// Unnumbered reports whether a message of op is left out of the count of
// messages that resuming relies on: the session protocol's own (_session,
// _resume, _ack) and the keepalive's (_ping, _pong). Both sides number
// every other message of a session, from 0, in the order sent.
func Unnumbered(op string) bool {
	switch op {
	case OpSession, OpResume, OpAck, OpPing, OpPong:
		return true
	}
	return false
}

// How often each side of a session says how many numbered messages it
// has: every AckEvery of them, or once they hold AckBytes, or
// AckAfterMillis after the first it has not yet acknowledged (a client;
// the server acknowledges by count and bytes only). The other side keeps
// what it sent until then, so these bound what it keeps.
const (
	AckEvery       = 256
	AckBytes       = 512 << 10
	AckAfterMillis = 1000
)

// The subprotocols a client offers in Sec-WebSocket-Protocol. A client
// that offers SubprotocolJSON speaks sessions: the server answers with it,
// and sends _session first. One that also offers SubprotocolResume sends
// _resume as its first message, and the server waits for it.
const (
	SubprotocolJSON   = "wszero.json"
	SubprotocolResume = "wszero.resume"
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

	KeyID      = "id"      // _session, _resume: the client's ID
	KeyKey     = "key"     // _session, _resume: the secret that resumes the session
	KeyResumed = "resumed" // _session: true when the session was resumed
	KeyMissed  = "missed"  // _session: how many messages follow that were sent while the client was away
	KeyGot     = "got"     // _session, _ack from the server: how many numbered messages the server has taken
	KeySeen    = "seen"    // _resume, _ack from the client: how many numbered messages the client has received
	KeySent    = "sent"    // _resume: how many numbered messages the client has sent in the session
	KeyWhy     = "why"     // _session: why a resume was refused
	KeyGroup   = "group"   // group_join, group_leave: the group
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

	// CloseReconnecting ends a connection and not its session: a client
	// sends it when it drops a connection to open another (it thinks it
	// dead), and the server when it drops a session client it heard
	// nothing from. 1000 and 1001 end the session.
	CloseReconnecting = 4000
)

// constant is one name of the protocol, as TypeScript renders it.
type constant struct{ name, value string }

var (
	ops = []constant{
		{"Connect", OpConnect}, {"Disconnect", OpDisconnect}, {"Error", OpError},
		{"Reply", OpReply}, {"Ping", OpPing}, {"Pong", OpPong}, {"Reload", OpReload}, {"EvalJS", OpEvalJS},
		{"Away", OpAway}, {"Back", OpBack}, {"Join", OpJoin}, {"Leave", OpLeave}, {"Session", OpSession}, {"Resume", OpResume}, {"Ack", OpAck},
	}
	keys = []constant{
		{"Op", KeyOp}, {"Ref", KeyRef}, {"Result", KeyResult}, {"Msg", KeyMsg},
		{"For", KeyFor}, {"Every", KeyEvery}, {"Script", KeyScript},
		{"ID", KeyID}, {"Key", KeyKey}, {"Resumed", KeyResumed}, {"Missed", KeyMissed},
		{"Got", KeyGot}, {"Seen", KeySeen}, {"Sent", KeySent}, {"Why", KeyWhy}, {"Group", KeyGroup},
	}
	subprotocols = []constant{{"JSON", SubprotocolJSON}, {"Resume", SubprotocolResume}}
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
	write("Subprotocol", "The subprotocols a session client offers.", subprotocols)
	fmt.Fprintf(&b, "// CloseReconnecting is the close code of a connection dropped to open another.\nexport const CloseReconnecting = %d;\n\n", CloseReconnecting)
	fmt.Fprintf(&b, "// Acknowledge every AckEvery numbered messages, AckBytes of them, or AckAfterMillis after the first.\nexport const AckEvery = %d;\nexport const AckBytes = %d;\nexport const AckAfterMillis = %d;\n\n", AckEvery, AckBytes, AckAfterMillis)
	fmt.Fprintf(&b, "// ReservedPrefix starts the ops and keys that belong to wszero.\nexport const ReservedPrefix = %q;\n", ReservedPrefix)
	return b.String()
}
