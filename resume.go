package wszero

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
)

// resumeOrStart serves a connection that offered to resume a session: it
// reads the client's _resume and takes the session over, or, when that
// cannot be, starts a new client and says why. Then it reads the
// connection, as every link's reader does.
func (s *Server) resumeOrStart(l *link, remote string, identity any) {
	req, err := l.readResume()
	var ne net.Error
	var ce *websocket.CloseError
	switch {
	case err == nil:
	case errors.As(err, &ne), errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		l.abandon() // the connection failed before it said anything
		return
	default:
		req = protocol.Resume{}
	}
	c, why := s.takeOver(l, req, remote)
	if c != nil {
		go l.readLoop()
		return
	}
	if node := NodeOf(req.ID); err == nil && s.clustered && node != "" && node != s.node {
		var relayed bool
		if relayed, why = s.relay(l, req, remote); relayed {
			return
		}
	}
	if err != nil {
		why = err.Error()
	}
	c = s.newClient(l, remote, identity, true, why)
	if !s.addClient(c) {
		s.refuseLate(l)
		return
	}
	s.logger().Debug("wszero: a client could not resume, and starts anew", "client", c.id, "why", why)
	s.start(c, l)
	l.readLoop()
}

// readResume reads a resuming connection's first message, which must come
// within the handshake timeout.
func (l *link) readResume() (protocol.Resume, error) {
	_ = l.conn.SetReadDeadline(time.Now().Add(l.server.opts.handshakeTimeout))
	defer l.conn.SetReadDeadline(time.Time{})
	_, r, err := l.conn.NextReader()
	if err != nil {
		return protocol.Resume{}, err
	}
	data, err := io.ReadAll(io.LimitReader(r, protocol.MaxResumeFrame+1))
	if err != nil {
		return protocol.Resume{}, err
	}
	return protocol.ParseResume(data)
}

// abandon lets go of a connection that failed before it had a client.
func (l *link) abandon() {
	l.closeConn()
	close(l.readerGone)
	l.server.release(l.ip)
}

// The words a client hears when its resume is refused. A wrong key and
// an ID the server does not know get the same words: an attempt learns
// nothing about which sessions exist.
const (
	whyUnknown  = "the session has ended (its resume window passed, or the server restarted), or its key is wrong"
	whyNoResume = "this server does not resume sessions (wszero.WithResumeWindow(0))"
	whyTooMuch  = "more was sent while the connection was down than the server keeps (wszero.WithResumeBuffer)"
	whyBusy     = "another connection is resuming the session"
)

// takeOver makes l the connection of the session req names, when its key
// is right and the server kept everything the client missed: a stale
// connection the server still holds is closed at once. It queues the
// _session message and what was missed, and returns the client; or nil,
// and why it cannot.
func (s *Server) takeOver(l *link, req protocol.Resume, remote string) (*Client, string) {
	if s.opts.resumeWindow <= 0 {
		return nil, whyNoResume
	}
	if req.ID == "" {
		return nil, whyUnknown
	}
	c := s.Client(req.ID)
	if c == nil {
		// As long as a wrong key takes: the answer's time tells nothing
		// either.
		(&session{}).keyMatches(req.Key)
		return nil, whyUnknown
	}
	c.mu.Lock()
	ss := c.session
	switch {
	case ss == nil || c.left || !ss.keyMatches(req.Key):
		c.mu.Unlock()
		return nil, whyUnknown
	case c.resuming:
		c.mu.Unlock()
		return nil, whyBusy
	}
	old := c.link
	c.resuming = true
	if old != nil {
		old.send.replaced = true
	}
	c.mu.Unlock()
	if old != nil {
		// The server had not noticed that the old connection died: it is
		// closed now, and its reader stops before the new one starts, so
		// that the count of what was taken is final.
		old.closeConn()
		<-old.readerGone
	}
	c.mu.Lock()
	if c.link == old {
		c.link = nil // closed, its reader gone: the client has no connection now
	}
	missed, ok := ss.missedSince(req.Seen)
	if ok {
		ss.ack(s, req.Seen) // the client has what came before
		missed, _ = ss.missedSince(req.Seen)
	}
	if left := c.left; left || !ok {
		c.resuming = false
		c.mu.Unlock()
		if left {
			return nil, whyUnknown
		}
		// It can never be resumed: it ends now, and the page starts anew.
		c.end(protocol.CloseGoingAway, whyTooMuch)
		return nil, whyTooMuch
	}
	wasAway := old == nil
	if ss.away != nil {
		ss.away.Stop()
		ss.away = nil
	}
	ss.awayGen++
	ss.key = newSessionKey() // a key works once
	frames := make([]outFrame, 0, len(missed)+1)
	frames = append(frames, sessionFrame(protocol.Session{ID: c.id, Key: ss.key.String(), Resumed: true, Missed: uint64(len(missed)), Got: c.got.Load()}))
	for _, pf := range missed {
		frames = append(frames, outFrame{kind: frameText, data: pf.payload(), prepared: pf})
	}
	bytes := 0
	for _, f := range frames {
		bytes += len(f.data)
	}
	l.c = c
	l.send.frames, l.send.bytes = frames, bytes
	if got := c.got.Load(); req.Sent > got && l.reader.limiter != nil {
		// What the client sends again now was sent, and paid for, before
		// the drop: the rate limit lets it through.
		// At most a burst more: no more than a new connection gets.
		l.reader.credit = int(min(req.Sent-got, uint64(s.opts.rateBurst)))
	}
	c.link, c.addr, c.remote, c.resuming = l, l.ip, remote, false
	l.startWriterLocked()
	c.mu.Unlock()
	s.away.remove(c)
	l.handleControl()
	s.startPing(c)
	s.logger().Debug("wszero: a client resumed its session", "client", c.id, "missed", len(missed), "was away", wasAway)
	s.toldBack(c)
	s.presence.awayChanged(c)
	return c, ""
}
