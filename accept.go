package wszero

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
	"golang.org/x/time/rate"
)

// serveWebSocket upgrades the request and starts the client's reader; the
// HTTP handler returns at once, so that net/http's per-request state is
// freed while the connection lives on.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "This is the wszero WebSocket endpoint: open the web page instead, and its script connects here.", http.StatusBadRequest)
		return
	}
	if s.isClosing() {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	// The cheap checks first: the origin, then the connection limits, and
	// only then the application's own check.
	if !s.checkOrigin(r) {
		s.upgradeError(w, r, http.StatusForbidden, errors.New("origin not allowed"))
		return
	}
	ip := s.clientIP(r)
	if status, reason := s.admit(ip); status != 0 {
		if status == http.StatusTooManyRequests {
			s.refuse(w, r, status, reason, slog.LevelWarn, "wszero: connection refused: too many from one address", "ip", ip, "limit", s.opts.maxConnsPerIP,
				"fix", "raise wszero.WithMaxConnectionsPerIP; behind a proxy, name it with wszero.WithTrustedProxies")
		} else {
			s.refuse(w, r, status, reason, slog.LevelWarn, "wszero: connection refused: the server is full", "limit", s.opts.maxConns,
				"fix", "raise wszero.WithMaxConnections")
		}
		return
	}
	identity, ok := s.authenticate(w, r)
	if !ok {
		s.release(ip)
		return
	}
	var bc *batchConn
	conn, err := s.upgrader.Upgrade(hijackWrapper{w, &bc, s.opts.writeTimeout}, r, nil)
	if err != nil {
		s.release(ip)
		return // the upgrader has answered the request
	}
	if testHookUpgraded != nil {
		testHookUpgraded()
	}
	l := s.newLink(conn, bc, ip)
	sessioned := conn.Subprotocol() == protocol.SubprotocolJSON
	if sessioned && slices.Contains(websocket.Subprotocols(r), protocol.SubprotocolResume) {
		// The client says which session it resumes in its first message:
		// the 101 goes out now, and the reader waits for that message.
		if bc.releaseHandshake() != nil {
			l.closeConn()
		}
		go s.resumeOrStart(l, r.RemoteAddr, identity)
		return
	}
	c := s.newClient(l, r.RemoteAddr, identity, sessioned, "")
	registered := s.addClient(c)
	// The 101 response goes out only now: once a client has seen it, it is
	// in the server's list, and no broadcast can miss it. Should the write
	// fail, the reader finds the connection closed, and the client leaves.
	if bc.releaseHandshake() != nil {
		l.closeConn()
	}
	if !registered {
		s.refuseLate(l)
		return
	}
	s.start(c, l)
	go l.readLoop()
}

// newLink makes the link for a connection just upgraded, from ip.
func (s *Server) newLink(conn *websocket.Conn, bc *batchConn, ip string) *link {
	l := &link{
		server:     s,
		conn:       conn,
		batch:      bc,
		ip:         ip,
		connClosed: make(chan struct{}),
		readerGone: make(chan struct{}),
	}
	if s.opts.ratePerSecond > 0 {
		l.reader.limiter = rate.NewLimiter(rate.Limit(s.opts.ratePerSecond), s.opts.rateBurst)
	}
	// A frame that says it is far larger than the limit is refused at once
	// (gorilla closes with 1009, without words): there is no point waiting
	// for bytes that would be thrown away. One a little over the limit is
	// read up to the limit and refused with a reason, by the reader.
	if limit := s.opts.maxMessageSize; limit < 1<<40 {
		conn.SetReadLimit(2*limit + 4<<10)
	}
	return l
}

// newClient makes a new client, not yet registered, whose connection is
// l. A sessioned client (one that spoke the session protocol's
// subprotocol) gets a session, unless resuming is off, and its _session
// frame is queued first (why says why a resume it asked for was refused).
func (s *Server) newClient(l *link, remote string, identity any, sessioned bool, why string) *Client {
	c := &Client{
		id:        s.newClientID(),
		server:    s,
		identity:  identity,
		link:      l,
		addr:      l.ip,
		remote:    remote,
		sessioned: sessioned,
	}
	key := ""
	if sessioned && s.opts.resumeWindow > 0 {
		c.session = &session{key: newSessionKey()}
		key = c.session.key.String()
	}
	if sessioned {
		// The first frame, queued before anything can reach the client
		// (a broadcast as soon as it is registered): start's writer sends it.
		f := sessionFrame(protocol.Session{ID: c.id, Key: key, Why: why})
		l.send.frames, l.send.bytes = append(l.send.frames, f), len(f.data)
	}
	l.c = c
	c.pingSlot = s.keep.slotForNewClient()
	return c
}

// refuseLate says goodbye to a client whose upgrade Shutdown overtook. No
// reader runs, so the writer closes without waiting for an answer.
func (s *Server) refuseLate(l *link) {
	close(l.readerGone)
	l.closeWith(protocol.CloseGoingAway, "the server is shutting down")
	go func() {
		<-l.connClosed
		s.release(l.ip)
	}()
}

// start begins serving a client registered with connection l: it sends
// a sessioned client its _session frame, includes it in the keepalive and
// runs its connect handler.
// The caller then runs l's reader.
func (s *Server) start(c *Client, l *link) {
	c.mu.Lock()
	if len(l.send.frames) > 0 {
		l.startWriterLocked() // the _session frame newClient queued, and what came since
	}
	c.mu.Unlock()
	l.handleControl()
	s.startPing(c)
	if h := s.handlerFor(protocol.OpConnect); h != nil {
		s.submit(func() { s.invoke(c, message{h: h}) })
	}
}

// testHookUpgraded, when a test sets it, runs between the upgrade and the
// client's registration.
var testHookUpgraded func()

// checkOrigin accepts requests without an Origin (programs), from the same
// host, and from origins matching WithAllowedOrigins.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range s.opts.allowedOrigins {
		subject := u.Host
		switch {
		case u.Host == "":
			subject = opaqueOrigin // "null", or an origin without a host such as "file://"
		case strings.Contains(p, "://"):
			subject = origin
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(subject)); ok {
			return true
		}
	}
	s.logThrottled(slog.LevelWarn, "wszero: connection refused: its page comes from another origin", "origin", origin, "host", r.Host,
		"fix", "allow it with wszero.WithAllowedOrigins")
	return false
}

// upgradeError answers a failed upgrade in words.
func (s *Server) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	msg := reason.Error()
	switch {
	case status == http.StatusForbidden && originHost(r.Header.Get("Origin")) == opaqueOrigin:
		msg = "This page was opened from a file (or has no origin of its own), and this server does not accept WebSocket connections from such pages. " +
			"Open the address the server printed (like http://localhost:8000) instead of the file; or, if you must, allow them with wszero.WithAllowedOrigins(\"null\")."
	case status == http.StatusForbidden:
		msg = fmt.Sprintf("This server does not accept WebSocket connections from pages at %s. "+
			"If that page is yours, allow it with wszero.WithAllowedOrigins(%q).", r.Header.Get("Origin"), originHost(r.Header.Get("Origin")))
	}
	http.Error(w, msg, status)
}

func originHost(origin string) string {
	u, err := url.Parse(origin)
	switch {
	case err != nil:
		return origin
	case u.Host == "":
		return opaqueOrigin
	}
	return u.Host
}

// opaqueOrigin is what WithAllowedOrigins matches for a page without an
// origin of its own (the browser sends "null"): opened from a file, or in a
// sandboxed frame.
const opaqueOrigin = "null"

// authenticate runs WithAuthenticate's function for r. When it refuses,
// authenticate has answered the request and ok is false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (identity any, ok bool) {
	if s.opts.authenticate == nil {
		return nil, true
	}
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("wszero: the WithAuthenticate function panicked", "panic", v, "remote", r.RemoteAddr, "stack", string(debug.Stack()))
			http.Error(w, "The server failed while checking this connection.", http.StatusInternalServerError)
			identity, ok = nil, false
		}
	}()
	identity, err := s.opts.authenticate(r)
	if err == nil {
		return identity, true
	}
	status, reason := http.StatusUnauthorized, err.Error()
	if reason == "" {
		reason = http.StatusText(status)
	}
	var he *HTTPError
	if errors.As(err, &he) {
		status, reason = he.status(), he.reason()
	}
	s.refuse(w, r, status, reason, slog.LevelInfo, "wszero: connection refused by the WithAuthenticate function", "reason", reason)
	return nil, false
}

// hijackWrapper hands the upgrader a batchConn in place of the raw
// connection, so that the writer can merge frames into single writes.
type hijackWrapper struct {
	http.ResponseWriter
	out          **batchConn
	writeTimeout time.Duration
}

// Hijack takes over the connection, wrapped.
func (h hijackWrapper) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("wszero: the ResponseWriter cannot be hijacked; mount the server in a plain net/http server")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	bc := newBatchConn(conn, rw.Reader, h.writeTimeout)
	bc.holding = true // the upgrader's 101 waits for the client to be registered
	*h.out = bc
	if bc.br == nil {
		return bc, rw, nil
	}
	// The upgrader takes a hijacked reader of more than 256 bytes as the
	// connection's own (ReadBufferSize is 0).
	return bc, bufio.NewReadWriter(bc.br, rw.Writer), nil
}
