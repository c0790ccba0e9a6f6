package wszero

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/wszero/wszero/internal/nodetunnel"
	"github.com/wszero/wszero/internal/protocol"
)

// A client whose connection dropped may come back to another node of the
// cluster (a load balancer without sticky sessions). Its session stays on
// the node that holds it: the node it reached opens a tunnel there over
// the nodes' signals (Broker.Signal, internal/nodetunnel) and relays the
// client's WebSocket bytes both ways, untouched, so that the session's
// node serves it as if it had dialled that node: resuming, numbering,
// keepalive and limits are the same, over every broker.

// A tunnel's messages, with the kind of signal before them, fit in a
// signal: this does not compile otherwise.
const _ = uint(MaxSignal - 1 - nodetunnel.MaxMessage)

// tunnels returns the node's tunnels to other nodes, made on first use.
func (s *Server) tunnels() *nodetunnel.Tunnels {
	r := &s.relays
	r.tunOnce.Do(func() {
		r.tun = nodetunnel.New(nodetunnel.Config{
			Node:  s.node,
			Send:  func(node string, msg []byte) error { return s.signal(node, signalTunnel, msg) },
			Knows: s.presence.knows,
			Accept: func(_ string, hello []byte) (func(net.Conn), string) {
				return s.acceptTunnel(hello)
			},
			Log: s.logThrottledWarn,
		})
	})
	return r.tun
}

// tunnelSignal takes in a tunnel's signal from another node.
func (s *Server) tunnelSignal(from string, msg []byte) {
	s.tunnels().Receive(from, msg)
}

// closeTunnels closes the node's tunnels, at the end of Shutdown, before
// the broker: the other nodes' ends read io.EOF.
func (s *Server) closeTunnels() {
	s.tunnels().Close()
}

// tunnelHello is what a relaying node tells the session's node.
type tunnelHello struct {
	protocol.Resume
	IP     string `json:"ip"`     // as the connection limits count it
	Remote string `json:"remote"` // the client's address, for logs
}

// whyNodeGone is what a client hears when its session's node does not
// answer: the tunnel there cannot open.
const whyNodeGone = "the node that held the session is gone (it stopped or restarted)"

// relay resumes, through a tunnel to the node that holds it, the session
// that req names, and relays l's connection there until either side ends.
// It reports false, and why, when it cannot.
func (s *Server) relay(l *link, req protocol.Resume, remote string) (bool, string) {
	hello, err := json.Marshal(tunnelHello{Resume: req, IP: l.ip, Remote: remote})
	if err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(s.relays.context(), s.opts.handshakeTimeout)
	defer cancel()
	node := NodeOf(req.ID)
	tun, err := s.tunnels().Open(ctx, node, hello)
	if err != nil {
		s.logger().Info("wszero: a client could not resume through a tunnel", "node", node, "err", err)
		var refused *nodetunnel.RefusedError
		if errors.As(err, &refused) {
			return false, refused.Reason // the session's node's words
		}
		return false, whyNodeGone
	}
	// The session's node answers the tunnel's upgrade as it would a
	// client's; this node answered the client already.
	fromTunnel := bufio.NewReader(tun)
	_ = tun.SetReadDeadline(time.Now().Add(s.opts.handshakeTimeout))
	resp, err := http.ReadResponse(fromTunnel, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		tun.Close()
		return false, whyNodeGone
	}
	_ = tun.SetReadDeadline(time.Time{})
	if !s.relays.add(l.batch.Conn, tun) {
		return false, "the server is shutting down"
	}
	go s.pipe(l, tun, fromTunnel)
	return true, ""
}

// pipe copies bytes between the client's connection and the tunnel until
// either ends, then closes both.
func (s *Server) pipe(l *link, tun net.Conn, fromTunnel *bufio.Reader) {
	client := l.batch.Conn
	done := make(chan struct{}, 2)
	go func() {
		// Bytes the client sent after its _resume are in the read buffer.
		if n := l.batch.br.Buffered(); n > 0 {
			held, _ := l.batch.br.Peek(n)
			if _, err := tun.Write(held); err != nil {
				done <- struct{}{}
				return
			}
		}
		_, _ = io.Copy(tun, client)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(deadlineWriter{client, s.opts.writeTimeout}, fromTunnel)
		done <- struct{}{}
	}()
	<-done
	client.Close()
	tun.Close()
	<-done
	s.relays.remove(client)
	s.release(l.ip)
}

// deadlineWriter bounds each write to a relayed client by the write timeout.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.conn.Write(p)
}

// relayList holds the connections this node relays to others, for
// Shutdown to close, and the node's tunnels.
type relayList struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]net.Conn // client → tunnel
	wg     sync.WaitGroup
	ctx    context.Context // of the tunnels being opened: canceled by closeAll
	cancel context.CancelFunc

	tunOnce sync.Once
	tun     *nodetunnel.Tunnels
}

// context returns the context of the tunnels that relays open, which
// closeAll cancels.
func (r *relayList) context() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
		if r.closed {
			r.cancel()
		}
	}
	return r.ctx
}

func (r *relayList) add(client, tun net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		client.Close()
		tun.Close()
		return false
	}
	if r.conns == nil {
		r.conns = make(map[net.Conn]net.Conn)
	}
	r.conns[client] = tun
	r.wg.Add(1)
	return true
}

func (r *relayList) remove(client net.Conn) {
	r.mu.Lock()
	delete(r.conns, client)
	r.mu.Unlock()
	r.wg.Done()
}

// closeAll ends every relay, and the opening of any, and waits for them.
func (r *relayList) closeAll() {
	r.mu.Lock()
	r.closed = true
	if r.cancel != nil {
		r.cancel()
	}
	for client, tun := range r.conns {
		client.Close()
		tun.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// acceptTunnel answers another node that relays a client resuming a
// session of this node: serve takes the tunnel when the session exists
// and the key is right.
func (s *Server) acceptTunnel(data []byte) (serve func(net.Conn), refused string) {
	var h tunnelHello
	if err := json.Unmarshal(data, &h); err != nil || h.ID == "" {
		return nil, "the tunnel's hello is not a resume"
	}
	if s.isClosing() {
		return nil, "the server is shutting down"
	}
	if s.opts.resumeWindow <= 0 {
		return nil, whyNoResume
	}
	s.mu.RLock()
	c := s.clients[h.ID]
	s.mu.RUnlock()
	if c == nil {
		return nil, whyUnknown
	}
	c.mu.Lock()
	ok := c.session != nil && !c.left && c.session.keyMatches(h.Key)
	c.mu.Unlock()
	if !ok {
		return nil, whyUnknown
	}
	if status, reason := s.admit(h.IP); status != 0 {
		return nil, reason
	}
	return func(conn net.Conn) { s.serveTunnel(conn, h) }, ""
}

// serveTunnel serves a client relayed by another node: the tunnel is
// upgraded as the client's connection would be, and the session resumed
// on it.
func (s *Server) serveTunnel(conn net.Conn, h tunnelHello) {
	var key [16]byte
	_, _ = rand.Read(key[:])
	r := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: "/ws"},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       "tunnel",
		RemoteAddr: h.Remote,
		Header: http.Header{
			"Connection":             {"Upgrade"},
			"Upgrade":                {"websocket"},
			"Sec-Websocket-Version":  {"13"},
			"Sec-Websocket-Key":      {base64.StdEncoding.EncodeToString(key[:])},
			"Sec-Websocket-Protocol": {protocol.SubprotocolJSON},
		},
	}
	var bc *batchConn
	ws, err := s.upgrader.Upgrade(hijackWrapper{&tunnelResponse{conn: conn}, &bc, s.opts.writeTimeout}, r, nil)
	if err != nil {
		conn.Close()
		s.release(h.IP)
		return
	}
	l := s.newLink(ws, bc, h.IP)
	if bc.releaseHandshake() != nil {
		l.abandon()
		return
	}
	c, why := s.takeOver(l, h.Resume, h.Remote)
	if c == nil {
		s.logger().Info("wszero: a client relayed by another node could not resume", "client", h.ID, "why", why)
		l.abandon()
		return
	}
	l.readLoop()
}

// tunnelResponse is the http.ResponseWriter of a tunnel's upgrade: the
// upgrader hijacks it at once.
type tunnelResponse struct {
	conn   net.Conn
	header http.Header
}

func (t *tunnelResponse) Header() http.Header {
	if t.header == nil {
		t.header = http.Header{}
	}
	return t.header
}

func (t *tunnelResponse) Write(p []byte) (int, error) { return len(p), nil }

func (t *tunnelResponse) WriteHeader(int) {}

func (t *tunnelResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}
