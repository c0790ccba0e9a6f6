package wszero

import (
	"sync"
	"time"

	"github.com/wszero/wszero/internal/protocol"
)

// Away reports whether the client's connection has dropped and it may
// still resume (see WithResumeWindow): it keeps its groups and state, and
// what is sent to it is delivered when it is back.
func (c *Client) Away() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link == nil && !c.left
}

// canResume reports whether the client may resume when its connection
// drops now.
func (c *Client) canResume() bool {
	closing := c.server.isClosing() // before c.mu: the server's lock comes first
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != nil && !c.left && !closing
}

// replaced reports whether a resume has taken the link's client over.
func (l *link) replaced() bool {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.send.replaced
}

// taken counts a numbered message of size bytes that the link's reader
// has taken from the client, and every protocol.AckEvery messages (or
// AckBytes) tells the client how many, so that it can let go of what it
// keeps to send again.
func (l *link) taken(size int) {
	c := l.c
	if !c.sessioned {
		return
	}
	got := c.got.Add(1)
	l.reader.unacked++
	l.reader.unackedBytes += size
	if l.reader.unacked >= protocol.AckEvery || l.reader.unackedBytes >= protocol.AckBytes {
		l.reader.unacked, l.reader.unackedBytes = 0, 0
		_ = c.enqueue(outFrame{kind: frameSession, data: protocol.AppendAck(nil, protocol.KeyGot, got)})
	}
}

// acked lets go of what the client says it has received.
func (c *Client) acked(seen uint64) {
	c.mu.Lock()
	if c.session != nil {
		c.session.ack(c.server, seen)
	}
	c.mu.Unlock()
}

// end makes the client leave for good: it can no longer resume, nothing
// more is sent to it, it is taken out of the server and its groups, and
// its connection is closed with code and reason after what is queued. Its
// disconnect handler runs once the connection is closed, or at once when
// it is away. end may be called more than once.
func (c *Client) end(code int, reason string) {
	c.endIf(code, reason, nil)
}

// endIf is end when cond, checked under c.mu in the same moment as the
// end itself, holds (nil: always): a timer or a bound that decided on
// what it saw a moment ago never ends a client that has resumed since.
func (c *Client) endIf(code int, reason string, cond func() bool) {
	s := c.server
	c.mu.Lock()
	if c.left || (cond != nil && !cond()) {
		c.mu.Unlock()
		return
	}
	c.left = true
	l := c.link
	if l != nil && l.send.replaced {
		// A resume is taking the client over from l, whose end will not
		// be the client's: the goodbye is said here.
		l = nil
	}
	if ss := c.session; ss != nil {
		if ss.away != nil {
			ss.away.Stop()
			ss.away = nil
		}
		ss.forget(s)
	}
	if l != nil {
		l.closeLocked(code, reason)
	}
	c.mu.Unlock()
	s.away.remove(c)
	s.removeClient(c)
	if l == nil {
		s.logger().Debug("wszero: client left", "client", c.id, "reason", reason)
		s.goodbye(c)
	}
}

// closeLink closes the client's connection at once, if it has one.
func (c *Client) closeLink() {
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l != nil {
		l.closeConn()
	}
}

// awayNow reports whether c is away, and away since the time gen names;
// c.mu is held.
func (c *Client) awayNow(gen uint64) bool {
	return c.link == nil && !c.left && !c.resuming && c.session != nil && c.session.awayGen == gen
}

// linkEnded is called once the connection l is closed. When l was the
// client's connection, the client leaves, or, when it may resume, is away.
func (c *Client) linkEnded(l *link, reason string) {
	s := c.server
	c.mu.Lock()
	if c.link != l || l.send.replaced {
		c.mu.Unlock()
		return // a resume took the client over
	}
	c.link = nil
	left := c.left
	var gen uint64
	if !left {
		ss := c.session
		ss.awayGen++
		gen = ss.awayGen
		ss.away = time.AfterFunc(s.opts.resumeWindow, func() { c.expire(gen) })
	}
	c.mu.Unlock()
	if left {
		s.logger().Debug("wszero: client disconnected", "client", c.id, "reason", reason)
		s.goodbye(c)
		return
	}
	s.logger().Debug("wszero: client away; it may resume", "client", c.id, "reason", reason, "window", s.opts.resumeWindow)
	s.presence.awayChanged(c)
	if h := s.handlerFor(protocol.OpAway); h != nil {
		s.submit(func() {
			// Only if it is still away by then, and told once: client_back
			// runs only for a client_away that ran.
			c.mu.Lock()
			tell := c.awayNow(gen) && !c.session.awayTold
			if tell {
				c.session.awayTold = true
			}
			c.mu.Unlock()
			if tell {
				s.invoke(c, message{h: h})
			}
		})
	}
	s.away.add(s, c, gen)
}

// toldBack runs the client_back handler of a client that resumed, when
// its client_away handler ran.
func (s *Server) toldBack(c *Client) {
	h := s.handlerFor(protocol.OpBack)
	if h == nil {
		return
	}
	s.submit(func() {
		c.mu.Lock()
		tell := c.session != nil && c.session.awayTold && c.link != nil && !c.left
		if tell {
			c.session.awayTold = false
		}
		c.mu.Unlock()
		if tell {
			s.invoke(c, message{h: h})
		}
	})
}

// expire ends the session of a client that did not come back within the
// resume window; gen names the time it went away.
func (c *Client) expire(gen uint64) {
	c.endIf(protocol.CloseGoingAway, "it did not come back within the resume window", func() bool { return c.awayNow(gen) })
}

// goodbye runs the disconnect handler of a client that has left.
func (s *Server) goodbye(c *Client) {
	s.submit(func() {
		defer s.conns.Done()
		if h := s.handlerFor(protocol.OpDisconnect); h != nil {
			s.invoke(c, message{h: h})
		}
	})
}

// awayList holds the clients that are away, so that there are never more
// of them than WithMaxConnections allows connected clients (or than its
// default, when connections are not limited): when one more goes away,
// the one away the longest leaves.
type awayList struct {
	mu      sync.Mutex
	clients map[*Client]awayEntry
}

// add notes that c is away since the time gen names, unless it is no
// longer (it resumed, or left, meanwhile), making the longest away leave
// when too many are.
func (a *awayList) add(s *Server, c *Client, gen uint64) {
	a.mu.Lock()
	c.mu.Lock() // the away list's lock comes first
	still := c.awayNow(gen)
	c.mu.Unlock()
	if !still {
		a.mu.Unlock()
		return
	}
	if a.clients == nil {
		a.clients = make(map[*Client]awayEntry)
	}
	a.clients[c] = awayEntry{since: time.Now(), gen: gen}
	var oldest *Client
	var oldestGen uint64
	if len(a.clients) > s.maxAway() {
		var since time.Time
		for o, e := range a.clients {
			if oldest == nil || e.since.Before(since) {
				oldest, since, oldestGen = o, e.since, e.gen
			}
		}
		delete(a.clients, oldest)
	}
	a.mu.Unlock()
	if oldest != nil {
		oldest.endIf(protocol.CloseGoingAway, "too many clients were away at once", func() bool { return oldest.awayNow(oldestGen) })
	}
}

// awayEntry is when a client went away, and which time it was.
type awayEntry struct {
	since time.Time
	gen   uint64
}

// maxAway is how many clients may be away at once: as many as may be
// connected, or DefaultMaxConnections when that is not limited.
func (s *Server) maxAway() int {
	if s.opts.maxConns > 0 {
		return s.opts.maxConns
	}
	return DefaultMaxConnections
}

// remove notes that c is no longer away.
func (a *awayList) remove(c *Client) {
	a.mu.Lock()
	delete(a.clients, c)
	a.mu.Unlock()
}

// len returns how many clients are away.
func (a *awayList) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.clients)
}
