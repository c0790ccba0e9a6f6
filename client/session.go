package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
)

// Session is what the server said about the session of a connection: the
// client's ID, and after a reconnection whether it resumed. WithOnSession
// receives it after every connection.
type Session struct {
	// ID is the client's ID on the server, as (*wszero.Client).ID tells;
	// the same after a resume, a new one after a reconnection that did
	// not resume.
	ID string
	// Resumed reports that the connection resumed the session of the one
	// before: the server kept the client, its groups and state, and sent
	// again what was missed. It is false on the first connection.
	Resumed bool
	// Missed is how many messages the server sent again, when Resumed.
	Missed int
	// Why says why a reconnection did not resume: the resume window
	// passed, the server restarted, or it missed more than the server
	// keeps. It is empty otherwise.
	Why string
}

// session is the Conn's side of a session with the server (see
// wszero.WithResumeWindow): both sides number their messages from 0,
// leaving out protocol.Unnumbered ones, and a Conn keeps what it sent
// until the server says it has taken it, to send it again after a resume.
// Conn.mu guards it, except seen, which the reader counts.
type session struct {
	id     string
	key    string     // "" when the server does not resume
	next   uint64     // the number of the next message sent
	outbox []numbered // sent, not yet taken by the server, from number outbox[0].n on

	seen     uint64      // numbered messages received: the reader's
	ackedAt  uint64      // the seen last acknowledged
	bytes    int         // in the numbered messages received since
	ackTimer *time.Timer // acknowledges a few messages that came alone
}

// numbered is a message sent in a session, kept until the server has it.
type numbered struct {
	n    uint64
	data []byte
	ref  int64 // the call's _ref, 0 for Send
}

// keep numbers data, a message about to be written, and keeps it.
func (s *session) keep(data []byte, ref int64) {
	s.outbox = append(s.outbox, numbered{n: s.next, data: data, ref: ref})
	s.next++
}

// taken lets go of the messages numbered below got, which the server has.
func (s *session) taken(got uint64) {
	i := 0
	for i < len(s.outbox) && s.outbox[i].n < got {
		i++
	}
	clear(s.outbox[:i])
	s.outbox = s.outbox[i:]
	if len(s.outbox) == 0 {
		s.outbox = nil
	}
}

// ackAfter is how long a message that came alone waits to be
// acknowledged; protocol.AckEvery and AckBytes say when at once.
const ackAfter = protocol.AckAfterMillis * time.Millisecond

// subprotocols are what a dial offers: sessions, and resuming one when
// there is a session to resume.
func (c *Conn) subprotocols() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.key != "" {
		return []string{protocol.SubprotocolJSON, protocol.SubprotocolResume}
	}
	return []string{protocol.SubprotocolJSON}
}

// greet does a new connection's part of the session protocol: it sends
// _resume when it resumes, and reads the server's _session, which comes
// first. A server that does not speak sessions gets nothing and says
// nothing.
func (c *Conn) greet(ctx context.Context, ws *websocket.Conn) (protocol.Session, error) {
	if ws.Subprotocol() != protocol.SubprotocolJSON {
		return protocol.Session{}, nil
	}
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = ws.SetReadDeadline(deadline)
	defer ws.SetReadDeadline(time.Time{})
	if offered := c.subprotocols(); len(offered) == 2 {
		c.mu.Lock()
		data, _ := json.Marshal(map[string]any{protocol.KeyOp: protocol.OpResume, protocol.KeyID: c.sess.id, protocol.KeyKey: c.sess.key,
			protocol.KeySeen: c.sess.seen, protocol.KeySent: c.sess.next})
		c.mu.Unlock()
		_ = ws.SetWriteDeadline(deadline)
		if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
			return protocol.Session{}, fmt.Errorf("client: resuming the session at %s: %w", c.url, err)
		}
	}
	_, data, err := ws.ReadMessage()
	if err != nil {
		return protocol.Session{}, fmt.Errorf("client: %s said nothing after the connection opened: %w", c.url, err)
	}
	var raw map[string]json.RawMessage
	var op string
	if json.Unmarshal(data, &raw) != nil || json.Unmarshal(raw[protocol.KeyOp], &op) != nil || op != protocol.OpSession {
		return protocol.Session{}, fmt.Errorf("client: %s did not begin with %s, as a wszero server does", c.url, protocol.OpSession)
	}
	s, err := protocol.ParseSession(raw)
	if err != nil {
		return s, fmt.Errorf("client: %s: %w", c.url, err)
	}
	return s, nil
}

// sawNumbered counts a numbered message of size bytes received on ws, and
// acknowledges what has arrived every protocol.AckEvery messages (or
// AckBytes), or ackAfter after one that came alone.
func (c *Conn) sawNumbered(ws *websocket.Conn, size int) {
	c.mu.Lock()
	s := c.sess
	if s == nil {
		c.mu.Unlock()
		return
	}
	s.seen++
	s.bytes += size
	switch {
	case s.seen-s.ackedAt >= protocol.AckEvery || s.bytes >= protocol.AckBytes:
		c.mu.Unlock()
		c.ack(ws)
		return
	case s.ackTimer == nil:
		s.ackTimer = time.AfterFunc(ackAfter, func() { c.ack(nil) })
	}
	c.mu.Unlock()
}

// ack tells the server how many numbered messages have arrived, on ws, or
// on the connection of the moment when ws is nil.
func (c *Conn) ack(ws *websocket.Conn) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	s := c.sess
	if ws == nil {
		ws = c.ws
	}
	if s != nil && s.ackTimer != nil {
		s.ackTimer.Stop()
		s.ackTimer = nil // armed again by the next message, or by the resume
	}
	if s == nil || ws == nil || c.closed {
		c.mu.Unlock()
		return
	}
	s.ackedAt, s.bytes = s.seen, 0
	data := protocol.AppendAck(nil, protocol.KeySeen, s.seen)
	c.mu.Unlock()
	_ = c.writeLocked(ws, data)
}

// serverTook lets go of what the server's _ack says it has taken.
func (c *Conn) serverTook(raw json.RawMessage) {
	got, ok := protocol.Count(raw)
	if !ok {
		return
	}
	c.mu.Lock()
	if c.sess != nil {
		c.sess.taken(got)
	}
	c.mu.Unlock()
}

// startSession records the session a connection began, or resumed;
// c.mu is held. It returns the messages to send again, in order, and fails
// the calls that a session that could not be resumed took with it.
func (c *Conn) startSessionLocked(s protocol.Session, why *lostError) (again []numbered) {
	if s.ID == "" {
		c.sess = nil // the server does not speak sessions
		return nil
	}
	if c.sess != nil && s.Resumed {
		c.sess.key = s.Key
		c.sess.taken(s.Got)
		if c.sess.seen > c.sess.ackedAt && c.sess.ackTimer == nil {
			// What arrived before the drop and was not acknowledged yet.
			c.sess.ackTimer = time.AfterFunc(ackAfter, func() { c.ack(nil) })
		}
		return c.sess.outbox
	}
	if c.sess != nil {
		// A new session: what the old one took is lost with it.
		if c.sess.ackTimer != nil {
			c.sess.ackTimer.Stop()
		}
		lost := &lostError{why: "the server could not resume the session: " + s.Why}
		if why != nil {
			lost.why = why.why + "; " + lost.why
			lost.cause = why.cause
		}
		c.failCallsLocked(true, lost.forCall)
	}
	c.sess = &session{id: s.ID, key: s.Key}
	return nil
}

// ID returns the client's ID on the server, as (*wszero.Client).ID tells
// it there: the same after a resume, a new one after a reconnection that
// started a new session. It is "" when the server does not speak sessions.
func (c *Conn) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return ""
	}
	return c.sess.id
}

// sessionOf is what WithOnSession's function is told of s.
func sessionOf(s protocol.Session) Session {
	return Session{ID: s.ID, Resumed: s.Resumed, Missed: int(s.Missed), Why: s.Why}
}
