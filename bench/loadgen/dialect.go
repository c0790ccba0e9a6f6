package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wszero/wszero/internal/protocol"
)

// Dialect is how a connection carries the application's messages. The
// scenarios send and check the same messages in every dialect: a
// connection wraps what it sends and unwraps what it receives.
type Dialect uint8

const (
	// Plain is the Go peers' protocol: a WebSocket at /ws, each message a
	// text frame of its own.
	Plain Dialect = iota
	// SocketIO is Engine.IO v4 / Socket.IO v5 over a WebSocket at
	// /socket.io/: a message {"op":"X",...} travels as the event
	// 42["X",{"op":"X",...}] in the main namespace, and the server's
	// Engine.IO pings ("2") are answered on the loop ("3").
	SocketIO
	// Session is wszero's protocol with sessions, as its browser and Go
	// clients speak it: the subprotocol wszero.json, the server's _session
	// frame first, and an _ack of the messages received every 128 of them,
	// so that the server lets go of what it keeps for a resume.
	Session
)

// String returns the dialect's name, as ParseDialect takes it.
func (d Dialect) String() string {
	switch d {
	case Plain:
		return "plain"
	case SocketIO:
		return "socketio"
	case Session:
		return "session"
	}
	return fmt.Sprintf("Dialect(%d)", uint8(d))
}

// ParseDialect returns the dialect named "plain", "socketio" or "session".
func ParseDialect(name string) (Dialect, error) {
	for _, d := range []Dialect{Plain, SocketIO, Session} {
		if d.String() == name {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dialect %q (plain, socketio or session)", name)
}

// header is what the dialect adds to the upgrade request.
func (d Dialect) header() string {
	if d == Session {
		return "Sec-WebSocket-Protocol: wszero.json\r\n"
	}
	return ""
}

// ackEvery is how many numbered messages a Session connection receives
// before it acknowledges them, as wszero's clients do.
const ackEvery = protocol.AckEvery

// openSession reads the server's _session frame, the first of a session.
func (c *Conn) openSession(r io.Reader) error {
	p, err := readFrame(r)
	if err != nil {
		return fmt.Errorf("wszero _session: %w", err)
	}
	if op, ok := opOf(p); !ok || string(op) != "_session" {
		return fmt.Errorf("wszero: want the _session frame first, got %.60q", p)
	}
	return nil
}

// session handles one text frame of a Session connection: the session
// protocol's own frames are not the application's, and every other is
// counted, and acknowledged every ackEvery. It reports whether the
// connection is still open.
func (l *Loop) session(c *Conn, p []byte) bool {
	if op, ok := opOf(p); ok && (string(op) == "_ack" || string(op) == "_session" || string(op) == "_ping") {
		if string(op) == "_ping" {
			l.OnMessage(c, p) // as in Plain
		}
		return true
	}
	if c.seen++; c.seen-c.acked >= ackEvery {
		c.acked = c.seen
		var buf [48]byte
		if c.write(nil, fmt.Appendf(buf[:0], `{"op":"_ack","seen":%d}`, c.seen), nil) != nil {
			l.Errors++
			l.drop(c)
			return false
		}
	}
	l.OnMessage(c, p)
	return true
}

// path is the URL path the dialect's WebSocket is at.
func (d Dialect) path() string {
	if d == SocketIO {
		return "/socket.io/?EIO=4&transport=websocket"
	}
	return "/ws"
}

// Engine.IO and Socket.IO packets, as text frames.
var (
	sioEvent   = []byte(`42`) // an Engine.IO message holding a Socket.IO event
	sioPing    = []byte(`2`)
	sioPong    = []byte(`3`)
	sioConnect = []byte(`40`)
)

// openSocketIO does what a Socket.IO client does once the WebSocket is
// open: it reads Engine.IO's open packet, joins the main namespace and
// waits for the server's answer. It reads exactly those frames from r, so
// nothing the loop should read is taken. It returns how long the server
// lets a connection go unread: pingInterval + pingTimeout.
func (c *Conn) openSocketIO(r io.Reader) (time.Duration, error) {
	p, err := readFrame(r)
	if err != nil {
		return 0, fmt.Errorf("socket.io open packet: %w", err)
	}
	var open struct {
		Sid          string `json:"sid"`
		PingInterval int    `json:"pingInterval"`
		PingTimeout  int    `json:"pingTimeout"`
	}
	if len(p) < 2 || p[0] != '0' || json.Unmarshal(p[1:], &open) != nil || open.Sid == "" || open.PingInterval <= 0 {
		return 0, fmt.Errorf("socket.io: want an Engine.IO open packet 0{\"sid\":…,\"pingInterval\":…}, got %q", p)
	}
	if err := c.write(sioConnect, nil, nil); err != nil {
		return 0, err
	}
	for {
		p, err := readFrame(r)
		switch {
		case err != nil:
			return 0, fmt.Errorf("socket.io namespace connect: %w", err)
		case bytes.Equal(p, sioPing):
			if err := c.write(sioPong, nil, nil); err != nil {
				return 0, err
			}
			continue
		case !bytes.HasPrefix(p, []byte(`40{"sid":`)):
			return 0, fmt.Errorf("socket.io: want 40{\"sid\":…} in answer to 40, got %q", p)
		}
		return time.Duration(open.PingInterval+open.PingTimeout) * time.Millisecond, nil
	}
}

// readFrame reads one whole unmasked text frame, and nothing more, from r.
// It is for the handshake only: the loop parses frames in place.
func readFrame(r io.Reader) ([]byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return nil, err
	}
	if h[0] != 0x81 || h[1]&0x80 != 0 {
		return nil, fmt.Errorf("want an unmasked, whole text frame, got header % x", h[:2])
	}
	n := int(h[1])
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			return nil, err
		}
		n = int(h[0])<<8 | int(h[1])
	case 127:
		return nil, errors.New("frame too long for a handshake")
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return p, err
}

// sendEvent sends payload, {"op":"X",...}, as the Socket.IO event
// 42["X",{"op":"X",...}].
func (c *Conn) sendEvent(payload []byte) error {
	op, ok := opOf(payload)
	if !ok {
		return fmt.Errorf("loadgen: a Socket.IO event needs a message that starts with {\"op\":\"…\", not %.20q", payload)
	}
	var buf [32]byte
	pre := append(append(append(buf[:0], `42["`...), op...), `",`...)
	return c.write(pre, payload, []byte(`]`))
}

// opOf returns X in a payload that starts {"op":"X".
func opOf(payload []byte) ([]byte, bool) {
	const key = `{"op":"`
	if !bytes.HasPrefix(payload, []byte(key)) {
		return nil, false
	}
	rest := payload[len(key):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return nil, false
	}
	return rest[:end], true
}

// unwrapEvent returns {"op":"X",...} from the frame 42["X",{"op":"X",...}]:
// the event's argument, which must name the event as its op.
func unwrapEvent(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte(`42["`)) || p[len(p)-1] != ']' {
		return nil, false
	}
	rest := p[4:]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || end+2 > len(rest)-1 || rest[end+1] != ',' {
		return nil, false
	}
	name, arg := rest[:end], rest[end+2:len(rest)-1]
	if op, ok := opOf(arg); !ok || !bytes.Equal(op, name) {
		return nil, false
	}
	return arg, true
}

// socketIO handles one text frame of a SocketIO connection: an event's
// argument goes to OnMessage, a ping is answered, and a close drops the
// connection. Anything else goes to OnMessage as it is, for the scenario
// to count as corrupt. It reports whether the connection is still open.
func (l *Loop) socketIO(c *Conn, p []byte) bool {
	switch {
	case bytes.HasPrefix(p, sioEvent):
		if arg, ok := unwrapEvent(p); ok {
			p = arg
		}
	case bytes.Equal(p, sioPing):
		if c.write(sioPong, nil, nil) != nil {
			l.Errors++
			l.drop(c)
			return false
		}
		return true
	case bytes.Equal(p, []byte(`1`)), bytes.HasPrefix(p, []byte(`41`)), bytes.HasPrefix(p, []byte(`44`)):
		// Engine.IO close, namespace disconnect, namespace error.
		l.Errors++
		l.drop(c)
		return false
	}
	l.OnMessage(c, p)
	return true
}
