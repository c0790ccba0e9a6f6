package natsbroker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/natsbroker"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait.
const testTimeout = 10 * time.Second

// logger is silent unless -v is given.
func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNATS runs a NATS server on 127.0.0.1 at port (-1: a free one) until
// the test ends or it is shut down.
func startNATS(t testing.TB, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	if !ns.ReadyForConnections(testTimeout) {
		t.Fatalf("NATS did not start on port %d", port)
	}
	t.Cleanup(func() { stopNATS(ns) })
	return ns
}

// portOf returns the port of a NATS URL.
func portOf(t testing.TB, natsURL string) int {
	u, err := url.Parse(natsURL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return port
}

// stopNATS shuts ns down and waits until it has.
func stopNATS(ns *server.Server) {
	ns.Shutdown()
	ns.WaitForShutdown()
}

// node is one wszero server of a test cluster.
type node struct {
	s      *wszero.Server
	b      *natsbroker.Broker
	ts     *httptest.Server
	url    string
	closed bool
	logs   *logRecorder // the broker's log lines
}

// logRecorder keeps the messages of the log lines it handles.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.lines = append(r.lines, rec.Message)
	r.mu.Unlock()
	if testing.Verbose() {
		return slog.Default().Handler().Handle(ctx, rec)
	}
	return nil
}

// logged reports whether a line containing text was logged.
func (r *logRecorder) logged(text string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, text) {
			return true
		}
	}
	return false
}

// startNode makes a wszero server with a NATS broker at natsURL, serves it,
// and shuts it down when the test ends.
func startNode(t testing.TB, natsURL string) *node {
	t.Helper()
	logs := &logRecorder{}
	b, err := natsbroker.Connect(natsURL, natsbroker.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	s := wszero.New(wszero.WithBroker(b), wszero.WithLogger(logger()))
	s.On("hello", func(c *wszero.Client) string { return c.ID() })
	ts := httptest.NewServer(s)
	n := &node{s: s, b: b, ts: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", logs: logs}
	t.Cleanup(func() { n.shutdown(t) })
	return n
}

// shutdown shuts the node down, once.
func (n *node) shutdown(t testing.TB) {
	if n.closed {
		return
	}
	n.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, n.s.Shutdown(ctx))
	n.ts.Close()
}

// cluster starts NATS and n nodes on it.
func cluster(t testing.TB, n int) (*server.Server, []*node) {
	t.Helper()
	ns := startNATS(t, -1)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, ns.ClientURL())
	}
	return ns, nodes
}

// msg is one message a test client received.
type msg struct {
	op string
	p  wszero.Params
}

// peer is a client connected to one node, keeping what it receives.
type peer struct {
	t    testing.TB
	id   string
	node *node
	conn *client.Conn

	mu      sync.Mutex
	got     []msg
	arrived chan struct{}
}

// dial connects a client to n; by the time it returns the server knows it.
func dial(t testing.TB, n *node) *peer {
	t.Helper()
	p := &peer{t: t, node: n, arrived: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := client.Dial(ctx, n.url, client.WithLogger(nil), client.WithUnhandled(p.record))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	p.conn = conn
	require.NoError(t, conn.Call(ctx, "hello", nil, &p.id))
	return p
}

func (p *peer) record(op string, params wszero.Params) {
	p.mu.Lock()
	p.got = append(p.got, msg{op, params})
	p.mu.Unlock()
	select {
	case p.arrived <- struct{}{}:
	default:
	}
}

// client returns the server's side of p.
func (p *peer) client() *wszero.Client {
	for _, c := range p.node.s.Clients() {
		if c.ID() == p.id {
			return c
		}
	}
	p.t.Fatalf("client %s is not on its node", p.id)
	return nil
}

// messages returns what p received with op, in order.
func (p *peer) messages(op string) []wszero.Params {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []wszero.Params
	for _, m := range p.got {
		if m.op == op {
			out = append(out, m.p)
		}
	}
	return out
}

// waitFor waits until p has received n messages with op, failing the test
// after testTimeout.
func (p *peer) waitFor(op string, n int) []wszero.Params {
	p.t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for {
		if got := p.messages(op); len(got) >= n {
			return got
		}
		select {
		case <-p.arrived:
		case <-deadline.C:
			p.t.Fatalf("client %s on its node: %d %q messages came in %v, want %d", p.id, len(p.messages(op)), op, testTimeout, n)
		}
	}
}

// eventually waits until cond holds, checking every few milliseconds, and
// fails the test with what after testTimeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", testTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// within runs f on a goroutine and returns its error, failing the test if
// it takes longer than testTimeout.
func within(t testing.TB, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(testTimeout):
		t.Fatalf("%s took more than %v", what, testTimeout)
		return nil
	}
}

// subscribed waits until n's broker has subscribed to group and NATS knows.
func subscribed(t testing.TB, n *node, group string, want bool) {
	t.Helper()
	eventually(t, fmt.Sprintf("subscribed to %q: %v", group, want), func() bool {
		return contains(n.b.Groups(), group) == want
	})
	require.NoError(t, n.b.Conn().Flush()) // the server has processed the (UN)SUB
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkSequence checks that msgs hold, for each sender in from, the numbers
// 0…n-1 in order and nothing else.
func checkSequence(t testing.TB, who string, msgs []wszero.Params, from []string, n int) {
	t.Helper()
	next := map[string]int{}
	for _, m := range msgs {
		f, _ := m["from"].(string)
		k, _ := m["n"].(float64)
		require.Equal(t, next[f], int(k), "%s: from %s: message %v out of order or repeated", who, f, k)
		next[f]++
	}
	for _, f := range from {
		require.Equal(t, n, next[f], "%s: from %s", who, f)
	}
	require.Len(t, next, len(from), "%s: senders %v", who, next)
}
