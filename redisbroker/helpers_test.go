package redisbroker_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/redisbroker"
	"github.com/wszero/wszero/wszerotest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		redis.SetLogger(quietRedis{}) // go-redis's own lines, such as failed dials while Redis is stopped
	}
	// go-redis probes a Redis it could not dial from a goroutine of its
	// own, which sees that the client is closed only after its pause of a
	// second: it ends then.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// testTimeout bounds every wait.
const testTimeout = 10 * time.Second

// logger is silent unless -v is given.
func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}

// redisServer is a redis-server that the test started, on one port.
type redisServer struct {
	path string
	port int
	proc *redisProc // the process running now, or the last one
}

// redisProc is one redis-server process.
type redisProc struct {
	cmd    *exec.Cmd
	ready  chan struct{} // closed when it accepts connections
	exited chan struct{} // closed when its output has ended: it has exited
	mu     sync.Mutex
	output []string // its last lines, for a failure message
}

// startRedis runs redis-server on 127.0.0.1 at a free port, without
// persistence, until the test ends or stop is called. It skips the test
// when redis-server is not installed, but fails it when CI=true.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not installed, and CI needs it for these tests: apt-get install redis-server")
		}
		t.Skip("redis-server is not installed (apt-get install redis-server): skipping the tests that need a real Redis")
	}
	for attempt := 1; ; attempt++ {
		r := &redisServer{path: path, port: freePort(t)}
		err := r.run(t)
		if err == nil {
			t.Cleanup(r.stop)
			return r
		}
		if attempt == 5 { // a free port can be taken before redis-server binds it
			t.Fatalf("redis-server did not start on port %d: %v", r.port, err)
		}
	}
}

// restart starts redis-server again, on the same port, after stop.
func (r *redisServer) restart(t testing.TB) {
	t.Helper()
	require.NoError(t, r.run(t), "redis-server did not start again on port %d", r.port)
}

// run starts redis-server and waits until it is ready or has exited.
func (r *redisServer) run(t testing.TB) error {
	p := &redisProc{ready: make(chan struct{}), exited: make(chan struct{})}
	p.cmd = exec.Command(r.path, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		return err
	}
	r.proc = p
	go p.read(out)
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		err := p.cmd.Wait()
		return fmt.Errorf("it exited (%v):\n%s", err, p.lines())
	case <-time.After(testTimeout):
		r.stop()
		return fmt.Errorf("not ready after %v:\n%s", testTimeout, p.lines())
	}
}

// read keeps redis-server's output until it ends, and notes when it is
// ready.
func (p *redisProc) read(out io.Reader) {
	defer close(p.exited)
	sc := bufio.NewScanner(out)
	for ready := false; sc.Scan(); {
		p.mu.Lock()
		p.output = append(p.output[max(0, len(p.output)-20):], sc.Text())
		p.mu.Unlock()
		if !ready && strings.Contains(sc.Text(), "Ready to accept connections") {
			ready = true
			close(p.ready)
		}
	}
	_, _ = io.Copy(io.Discard, out)
}

func (p *redisProc) lines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.output, "\n")
}

// URL is the server's redis:// URL.
func (r *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d", r.port) }

// stop ends redis-server by its PID (SIGTERM, then SIGKILL if it lingers)
// and waits until it has exited; once it has, stop does nothing.
func (r *redisServer) stop() {
	p := r.proc
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(testTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	_ = p.cmd.Wait()
}

// numSub asks the server how many connections subscribe to each channel.
func (r *redisServer) numSub(t testing.TB, channels ...string) map[string]int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port)})
	defer c.Close()
	n, err := c.PubSubNumSub(context.Background(), channels...).Result()
	require.NoError(t, err)
	return n
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// groupChannel is the channel of a group, as the package doc says.
func groupChannel(group string) string {
	return "wszero.g." + base64.RawURLEncoding.EncodeToString([]byte(group))
}

// node is one wszero server of a test cluster.
type node struct {
	s    *wszero.Server
	b    *redisbroker.Broker
	ws   *wszerotest.Server
	logs *logLines // the broker's log
}

// startNode makes a wszero server with a Redis broker made with opts,
// and the server's own options, serves it, and shuts it down when the
// test ends.
func startNode(t testing.TB, redisURL string, opts []redisbroker.Option, serverOpts ...wszero.Option) *node {
	t.Helper()
	logs := &logLines{wrote: make(chan struct{}, 1)}
	opts = append([]redisbroker.Option{redisbroker.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	b, err := redisbroker.Connect(redisURL, opts...)
	require.NoError(t, err)
	s := wszero.New(append([]wszero.Option{wszero.WithBroker(b), wszero.WithLogger(logger())}, serverOpts...)...)
	s.On("hello", func(c *wszero.Client) string { return c.ID() })
	return &node{s: s, b: b, ws: wszerotest.NewServer(t, s), logs: logs}
}

// shutdown shuts the node down now, and returns what Shutdown returned.
func (n *node) shutdown(t testing.TB) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := n.s.Shutdown(ctx)
	n.ws.Close()
	return err
}

// cluster starts redis-server and n nodes on it.
func cluster(t testing.TB, n int) (*redisServer, []*node) {
	t.Helper()
	r := startRedis(t)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, r.URL(), nil)
	}
	return r, nodes
}

// subscribed waits until Redis has subscribed n's broker to group's
// channel, or unsubscribed it.
func subscribed(t testing.TB, n *node, group string, want bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, n.b.WaitGroup(ctx, group, want), "subscribed to %q: %v", group, want)
	require.Equal(t, want, slices.Contains(n.b.Groups(), group))
}

// logLines keeps a broker's log output and wakes a waiter at each line.
type logLines struct {
	mu    sync.Mutex
	text  strings.Builder
	wrote chan struct{}
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.text.Write(p)
	l.mu.Unlock()
	if testing.Verbose() {
		os.Stderr.Write(p)
	}
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logLines) has(text string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.text.String(), text)
}

// wait waits until a line containing text has been logged.
func (l *logLines) wait(t testing.TB, text string) {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for !l.has(text) {
		select {
		case <-l.wrote:
		case <-deadline.C:
			t.Fatalf("no %q in the broker's log after %v", text, testTimeout)
		}
	}
}

// peer is a client connected to one node.
type peer struct {
	*wszerotest.Client
	id   string
	node *node
}

// dial connects a client to n; by the time it returns the server knows it.
func dial(t testing.TB, n *node) *peer {
	t.Helper()
	c := n.ws.Dial()
	c.Timeout = testTimeout
	return &peer{Client: c, id: c.Call("hello", nil).(string), node: n}
}

// client returns the server's side of p.
func (p *peer) client(t testing.TB) *wszero.Client {
	t.Helper()
	c := p.node.s.Client(p.id)
	require.NotNil(t, c, "client %s is not on its node", p.id)
	return c
}

// numbered is the parameters of the numbered messages that the tests
// send: n from a sender, or its end marker after the last.
func numbered(from string, n int) wszero.Params { return wszero.Params{"from": from, "n": n} }

func endMarker(from string) wszero.Params { return wszero.Params{"from": from, "end": true} }

// expectSequences takes p's op messages until every sender in from has
// sent its end marker, and checks that each sender's numbers before it run
// 0…n-1 in order. Each node's messages arrive in order, so a message lost,
// doubled or out of order fails the test.
//
// Messages marked "away" (sent while Redis was away) may come first, and
// some may be lost, but never out of order nor twice; expectSequences
// returns how many came.
func expectSequences(t testing.TB, p *peer, op string, from []string, n int) (away int) {
	t.Helper()
	next, lastAway := map[string]int{}, map[string]int{}
	for ended := 0; ended < len(from); {
		m := p.Expect(op)
		f, _ := m["from"].(string)
		require.Contains(t, from, f, "client %s: a message from an unknown sender: %v", p.id, m)
		k, _ := m["n"].(float64)
		switch {
		case m["away"] == true:
			require.Zero(t, next[f], "client %s: from %s: an away message %v after the others", p.id, f, k)
			if last, ok := lastAway[f]; ok {
				require.Greater(t, int(k), last, "client %s: from %s: away message %v out of order or repeated", p.id, f, k)
			}
			lastAway[f] = int(k)
			away++
		case m["end"] == true:
			require.Equal(t, n, next[f], "client %s: from %s: messages before the end marker", p.id, f)
			ended++
		default:
			require.Equal(t, next[f], int(k), "client %s: from %s: message %v out of order, repeated or after a gap", p.id, f, k)
			next[f]++
		}
	}
	return away
}

// sendAll has every node send n numbered messages and its end marker with
// send, each node from its own goroutine, at once, and returns the
// senders' names.
func sendAll(t testing.TB, nodes []*node, n int, send func(i int, p wszero.Params) error) []string {
	t.Helper()
	from := make([]string, len(nodes))
	errs := make(chan error, len(nodes))
	var wg sync.WaitGroup
	for i := range nodes {
		from[i] = fmt.Sprintf("node%d", i)
		wg.Go(func() {
			for k := range n {
				if err := send(i, numbered(from[i], k)); err != nil {
					errs <- err
					return
				}
			}
			errs <- send(i, endMarker(from[i]))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return from
}
