package natsbroker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/natsbroker"
)

// The broker is a wszero.Tunneler.
var _ wszero.Tunneler = (*natsbroker.Broker)(nil)

// tunNode is a broker started with a fake wszero.Node, which accepts
// tunnels (unless refuse is set) and hands their ends to the test.
type tunNode struct {
	id       string
	b        *natsbroker.Broker
	refuse   string
	wait     chan struct{} // if set, AcceptTunnel waits until it is closed
	accepted chan accepted
}

// accepted is a tunnel that a tunNode accepted, and its hello.
type accepted struct {
	hello []byte
	conn  net.Conn
}

func (n *tunNode) ID() string                    { return n.id }
func (n *tunNode) Deliver(wszero.Target, []byte) {}
func (n *tunNode) Members(string) int            { return 0 }
func (n *tunNode) AcceptTunnel(hello []byte) (func(net.Conn), string) {
	if n.wait != nil {
		<-n.wait
	}
	if n.refuse != "" {
		return nil, n.refuse
	}
	hello = bytes.Clone(hello)
	return func(c net.Conn) { n.accepted <- accepted{hello, c} }, ""
}

// startTunNode connects a broker to natsURL and starts it with a fake node
// whose ID is id; it is closed when the test ends.
func startTunNode(t testing.TB, natsURL, id string, opts ...natsbroker.Option) *tunNode {
	t.Helper()
	b, err := natsbroker.Connect(natsURL, append([]natsbroker.Option{natsbroker.WithLogger(logger())}, opts...)...)
	require.NoError(t, err)
	n := &tunNode{id: id, b: b, accepted: make(chan accepted, 16)}
	require.NoError(t, b.Start(n))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = b.Close(ctx)
	})
	return n
}

// tunnelPair starts NATS and two nodes, A and B, with opts.
func tunnelPair(t testing.TB, optsA, optsB []natsbroker.Option) (*tunNode, *tunNode) {
	ns := startNATS(t, -1)
	return startTunNode(t, ns.ClientURL(), "nodeA", optsA...), startTunNode(t, ns.ClientURL(), "nodeB", optsB...)
}

// openTunnel opens a tunnel from one node to another with hello and
// returns both ends, closed when the test ends.
func openTunnel(t testing.TB, from, to *tunNode, hello string) (net.Conn, net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	here, err := from.b.Tunnel(ctx, to.id, []byte(hello))
	require.NoError(t, err)
	t.Cleanup(func() { here.Close() })
	there := accept(t, to)
	require.Equal(t, hello, string(there.hello))
	t.Cleanup(func() { there.conn.Close() })
	return here, there.conn
}

// accept returns the next tunnel that n accepted.
func accept(t testing.TB, n *tunNode) accepted {
	t.Helper()
	select {
	case a := <-n.accepted:
		return a
	case <-time.After(testTimeout):
		t.Fatalf("node %s accepted no tunnel in %v", n.id, testTimeout)
		return accepted{}
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

// readErr reads from c until it fails, and returns the error.
func readErr(t testing.TB, c net.Conn) error {
	t.Helper()
	return within(t, "reading to the end", func() error {
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			return io.EOF // io.Copy's nil is Read's io.EOF
		}
		return err
	})
}

// writeRandom writes size random bytes (from seed) to c in chunks of
// random sizes, and returns their checksum.
func writeRandom(c net.Conn, seed uint64, size int) ([32]byte, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(100_000))
		if _, err := c.Write(rest[:n]); err != nil {
			return [32]byte{}, err
		}
		rest = rest[n:]
	}
	return sha256.Sum256(data), nil
}

// readRandom reads size bytes from c in reads of random sizes, and
// returns their checksum.
func readRandom(c net.Conn, seed uint64, size int) ([32]byte, error) {
	r := rand.New(rand.NewPCG(seed, 2))
	h := sha256.New()
	buf := make([]byte, 100_000)
	for got := 0; got < size; {
		n, err := c.Read(buf[:min(size-got, 1+r.IntN(len(buf)))])
		h.Write(buf[:n])
		got += n
		if err != nil {
			return [32]byte{}, err
		}
	}
	return [32]byte(h.Sum(nil)), nil
}

func TestTunnelCarriesBytesBothWaysInOrder(t *testing.T) {
	small := natsbroker.WithTunnelWindow(4096)
	for _, tc := range []struct {
		name         string
		optsA, optsB []natsbroker.Option
	}{
		{"default window", nil, nil},
		{"small windows", []natsbroker.Option{small}, []natsbroker.Option{small}},
		{"windows that differ", []natsbroker.Option{small}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tunnelPair(t, tc.optsA, tc.optsB)
			hello := "resume session 42\x00\xff"
			ca, cb := openTunnel(t, a, b, hello)
			require.Equal(t, "nodeA", ca.LocalAddr().String())
			require.Equal(t, "nodeB", ca.RemoteAddr().String())
			require.Equal(t, "nodeB", cb.LocalAddr().String())
			require.Equal(t, "nodeA", cb.RemoteAddr().String())

			const aToB, bToA = 3 << 20, 2<<20 + 12345
			type result struct {
				sum [32]byte
				err error
			}
			results := make(chan result, 4)
			run := func(f func() ([32]byte, error)) {
				go func() { s, err := f(); results <- result{s, err} }()
			}
			run(func() ([32]byte, error) { return writeRandom(ca, 1, aToB) })
			run(func() ([32]byte, error) { return readRandom(cb, 1, aToB) })
			run(func() ([32]byte, error) { return writeRandom(cb, 2, bToA) })
			run(func() ([32]byte, error) { return readRandom(ca, 2, bToA) })
			sums := map[[32]byte]int{}
			for range 4 {
				select {
				case r := <-results:
					require.NoError(t, r.err)
					sums[r.sum]++
				case <-time.After(testTimeout):
					t.Fatalf("the bytes took more than %v", testTimeout)
				}
			}
			require.Len(t, sums, 2, "each direction's reader has the writer's checksum")
			for _, n := range sums {
				require.Equal(t, 2, n)
			}

			require.NoError(t, ca.Close())
			require.ErrorIs(t, readErr(t, cb), io.EOF)
		})
	}
}

func TestTunnelClosedEndGivesEOFAfterAllData(t *testing.T) {
	for _, closer := range []string{"opener", "acceptor"} {
		t.Run("closed by the "+closer, func(t *testing.T) {
			a, b := tunnelPair(t, nil, nil)
			writer, reader := openTunnel(t, a, b, "hi")
			if closer == "acceptor" {
				writer, reader = reader, writer
			}
			const size = 1 << 20 // more than the window: the writer waits for the reader
			wrote := make(chan error, 1)
			var sum [32]byte
			go func() {
				var err error
				sum, err = writeRandom(writer, 7, size)
				if err == nil {
					err = writer.Close()
				}
				wrote <- err
			}()
			got, err := readRandom(reader, 0, size)
			require.NoError(t, err)
			require.NoError(t, <-wrote)
			require.Equal(t, sum, got)
			n, err := reader.Read(make([]byte, 10))
			require.Equal(t, 0, n)
			require.ErrorIs(t, err, io.EOF)
			_, err = reader.Write([]byte("too late"))
			require.ErrorIs(t, err, io.ErrClosedPipe)

			_, err = writer.Read(make([]byte, 10))
			require.ErrorIs(t, err, net.ErrClosed)
			_, err = writer.Write([]byte("x"))
			require.ErrorIs(t, err, net.ErrClosed)
			require.NoError(t, writer.Close(), "a second Close")
		})
	}
}

func TestTunnelRefusedGivesTheNodesWords(t *testing.T) {
	a, b := tunnelPair(t, nil, nil)
	b.refuse = "no session with that ID here: it expired"
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := a.b.Tunnel(ctx, b.id, []byte("resume 42"))
	require.Nil(t, c)
	require.ErrorContains(t, err, b.refuse)
	var refused *natsbroker.RefusedError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, b.refuse, refused.Reason)
	require.Equal(t, "nodeB", refused.Node)
}

func TestTunnelToUnknownNodeFailsAtOnce(t *testing.T) {
	a, _ := tunnelPair(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := a.b.Tunnel(ctx, "nobody", nil)
	require.ErrorIs(t, err, natsbroker.ErrNoNode)
	require.ErrorContains(t, err, "nobody")
	require.NoError(t, ctx.Err(), "it did not wait for the context")

	_, err = a.b.Tunnel(ctx, "not.a.node", nil)
	require.ErrorContains(t, err, "not a node ID")
}

func TestTunnelGivenUpIsClosedAtTheNodeThatAcceptsItLate(t *testing.T) {
	a, b := tunnelPair(t, nil, nil)
	release := make(chan struct{})
	b.wait = release // B takes its time to accept
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := a.b.Tunnel(ctx, b.id, []byte("late"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	late := accept(t, b)
	defer late.conn.Close()
	// Closed at once, not after the keepalives (5 s) go unanswered.
	err = readErr(t, late.conn)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorContains(t, err, "gave up")
}

func TestTunnelToItsOwnNode(t *testing.T) {
	a, _ := tunnelPair(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	here, err := a.b.Tunnel(ctx, a.id, []byte("me"))
	require.NoError(t, err)
	there := accept(t, a)
	require.Equal(t, "me", string(there.hello))
	go func() { _, _ = there.conn.Write([]byte("pong")) }()
	got := make([]byte, 4)
	_, err = io.ReadFull(here, got)
	require.NoError(t, err)
	require.Equal(t, "pong", string(got))
	require.NoError(t, here.Close())
	require.ErrorIs(t, readErr(t, there.conn), io.EOF)
}

func TestTunnelReadDeadline(t *testing.T) {
	a, b := tunnelPair(t, nil, nil)
	ca, cb := openTunnel(t, a, b, "hi")
	buf := make([]byte, 10)

	require.NoError(t, ca.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := ca.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())

	// A deadline set while a Read waits ends it.
	require.NoError(t, ca.SetReadDeadline(time.Time{}))
	blocked := make(chan error, 1)
	go func() { _, err := ca.Read(buf); blocked <- err }()
	require.NoError(t, ca.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	require.ErrorIs(t, within(t, "a Read past its deadline", func() error { return <-blocked }), os.ErrDeadlineExceeded)

	// Without a deadline the tunnel goes on: nothing was lost.
	require.NoError(t, ca.SetDeadline(time.Time{}))
	_, err = cb.Write([]byte("still here"))
	require.NoError(t, err)
	got := make([]byte, len("still here"))
	_, err = io.ReadFull(ca, got)
	require.NoError(t, err)
	require.Equal(t, "still here", string(got))
}

func TestTunnelWriteWaitsForTheReaderUntilItsDeadline(t *testing.T) {
	const window = 4096
	a, b := tunnelPair(t, nil, []natsbroker.Option{natsbroker.WithTunnelWindow(window)})
	ca, cb := openTunnel(t, a, b, "hi")
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}

	// B does not read: A's Write fills B's window, waits, and gives up.
	require.NoError(t, ca.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	n, err := ca.Write(data)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Greater(t, n, 0)
	require.LessOrEqual(t, n, window, "no more than the window is in flight")

	// The rest goes once B reads, after exactly the first n bytes.
	require.NoError(t, ca.SetWriteDeadline(time.Time{}))
	wrote := make(chan error, 1)
	go func() { _, err := ca.Write(data[n:]); wrote <- err }()
	got := make([]byte, len(data))
	_, err = io.ReadFull(cb, got)
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	require.True(t, bytes.Equal(data, got), "the bytes arrived whole and in order")
}

func TestTunnelCloseEndsBlockedReadAndWrite(t *testing.T) {
	window := []natsbroker.Option{natsbroker.WithTunnelWindow(4096)}
	a, b := tunnelPair(t, window, window)
	ca, cb := openTunnel(t, a, b, "hi")
	errs := make(chan error, 2)
	go func() { _, err := ca.Read(make([]byte, 10)); errs <- err }()
	go func() { _, err := ca.Write(make([]byte, 1<<20)); errs <- err }() // cannot end: B does not read
	require.NoError(t, ca.Close())
	for range 2 {
		require.ErrorIs(t, within(t, "a blocked call", func() error { return <-errs }), net.ErrClosed)
	}
	require.ErrorIs(t, readErr(t, cb), io.EOF, "B reads what came, then io.EOF")
}

func TestClosingABrokerEndsItsTunnels(t *testing.T) {
	for _, closed := range []string{"acceptor", "opener"} {
		t.Run("the "+closed+"'s broker", func(t *testing.T) {
			a, b := tunnelPair(t, nil, nil)
			ca, cb := openTunnel(t, a, b, "hi")
			gone, other, stays := b, a, ca
			mine := cb
			if closed == "opener" {
				gone, other, stays, mine = a, b, cb, ca
			}
			_, err := mine.Write([]byte("last words"))
			require.NoError(t, err)
			blocked := make(chan error, 1)
			go func() { _, err := mine.Read(make([]byte, 10)); blocked <- err }()

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			require.NoError(t, gone.b.Close(ctx))

			// The other end reads what was written, then io.EOF.
			got := make([]byte, len("last words"))
			_, err = io.ReadFull(stays, got)
			require.NoError(t, err)
			require.Equal(t, "last words", string(got))
			require.ErrorIs(t, readErr(t, stays), io.EOF)

			// This end's calls fail, a blocked one too.
			err = within(t, "a Read on a closed broker", func() error { return <-blocked })
			require.ErrorIs(t, err, natsbroker.ErrClosed)
			require.ErrorIs(t, err, net.ErrClosed)
			_, err = mine.Write([]byte("x"))
			require.ErrorIs(t, err, natsbroker.ErrClosed)

			_, err = gone.b.Tunnel(ctx, other.id, nil)
			require.ErrorIs(t, err, natsbroker.ErrClosed)
			if closed == "acceptor" {
				_, err = other.b.Tunnel(ctx, gone.id, nil)
				require.ErrorIs(t, err, natsbroker.ErrNoNode)
			}
		})
	}
}

func TestTunnelBreaksWhenTheOtherNodeVanishes(t *testing.T) {
	keepalive := []natsbroker.Option{natsbroker.WithTunnelKeepalive(50 * time.Millisecond)}
	a, b := tunnelPair(t, keepalive, keepalive)
	ca, cb := openTunnel(t, a, b, "hi")
	// B's NATS connection goes without a word, as when its process dies.
	b.b.Conn().Close()
	err := readErr(t, ca)
	require.ErrorIs(t, err, natsbroker.ErrTunnelBroken)
	require.ErrorContains(t, err, "has said nothing")
	_, err = ca.Write([]byte("x"))
	require.ErrorIs(t, err, natsbroker.ErrTunnelBroken)
	require.ErrorIs(t, readErr(t, cb), natsbroker.ErrTunnelBroken)
}

func TestTunnelIdleWithKeepalivesStaysOpen(t *testing.T) {
	fast := natsbroker.WithTunnelKeepalive(10 * time.Millisecond)
	slow := natsbroker.WithTunnelKeepalive(150 * time.Millisecond)
	for _, tc := range []struct {
		name         string
		optsA, optsB []natsbroker.Option
	}{
		{"same intervals", []natsbroker.Option{fast}, []natsbroker.Option{fast}},
		{"different intervals", []natsbroker.Option{fast}, []natsbroker.Option{slow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tunnelPair(t, tc.optsA, tc.optsB)
			ca, cb := openTunnel(t, a, b, "hi")
			// Idle for many more of A's intervals than breaking takes,
			// and a few of B's: still open both ways.
			require.NoError(t, ca.SetReadDeadline(time.Now().Add(600*time.Millisecond)))
			_, err := ca.Read(make([]byte, 1))
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			require.NoError(t, ca.SetReadDeadline(time.Time{}))
			for _, dir := range [][2]net.Conn{{cb, ca}, {ca, cb}} {
				_, err = dir[0].Write([]byte("ok"))
				require.NoError(t, err)
				got := make([]byte, 2)
				_, err = io.ReadFull(dir[1], got)
				require.NoError(t, err)
				require.Equal(t, "ok", string(got))
			}
		})
	}
}

func TestTunnelBreaksOnAMissingMessage(t *testing.T) {
	ns := startNATS(t, -1)
	a, b := startTunNode(t, ns.ClientURL(), "nodeA"), startTunNode(t, ns.ClientURL(), "nodeB")
	// A spy on NATS learns A's tunnel inbox from B's first data message.
	spy, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer spy.Close()
	seen := make(chan *nats.Msg, 64)
	_, err = spy.ChanSubscribe("_INBOX.>", seen)
	require.NoError(t, err)
	require.NoError(t, spy.Flush())

	ca, cb := openTunnel(t, a, b, "hi")
	_, err = cb.Write([]byte("before"))
	require.NoError(t, err)
	var inbox string
	for inbox == "" {
		select {
		case m := <-seen:
			if len(m.Data) > 0 && m.Data[0] == 'd' && strings.HasSuffix(string(m.Data), "before") {
				inbox = m.Subject
			}
		case <-time.After(testTimeout):
			t.Fatal("the spy saw no data")
		}
	}
	got := make([]byte, len("before"))
	_, err = io.ReadFull(ca, got)
	require.NoError(t, err)
	require.Equal(t, "before", string(got))

	// A message numbered 5 where 1 is due: 1 to 4 were lost. (The spy
	// waits until A has message 0: NATS orders each publisher's messages,
	// but the spy's could overtake B's.)
	forged := append([]byte{'d', 0, 0, 0, 0, 0, 0, 0, 5}, "after"...)
	require.NoError(t, spy.Publish(inbox, forged))
	err = readErr(t, ca)
	require.ErrorIs(t, err, natsbroker.ErrTunnelBroken)
	require.ErrorContains(t, err, "lost 4 messages")
	// B is told why.
	err = readErr(t, cb)
	require.ErrorIs(t, err, natsbroker.ErrTunnelBroken)
	require.ErrorContains(t, err, "lost 4 messages")
}

// BenchmarkTunnel measures a tunnel's throughput, one way, with writes of
// several sizes.
func BenchmarkTunnel(b *testing.B) {
	for _, size := range []int{100, 4096, 64 << 10} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			a, c := tunnelPair(b, nil, nil)
			ca, cb := openTunnel(b, a, c, "bench")
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, cb, int64(size)*int64(b.N))
				done <- err
			}()
			for range b.N {
				if _, err := ca.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func TestTunnelAcrossANATSRestartBreaksOrStaysWhole(t *testing.T) {
	// With a short keepalive the silence while NATS is away breaks the
	// tunnel; with a longer one the nodes reconnect first, and what NATS
	// lost meanwhile breaks it.
	for _, k := range []time.Duration{50 * time.Millisecond, time.Second} {
		t.Run(k.String(), func(t *testing.T) { testTunnelAcrossANATSRestart(t, k) })
	}
}

func testTunnelAcrossANATSRestart(t *testing.T, k time.Duration) {
	ns := startNATS(t, -1)
	url := ns.ClientURL()
	keepalive := natsbroker.WithTunnelKeepalive(k)
	a, b := startTunNode(t, url, "nodeA", keepalive), startTunNode(t, url, "nodeB", keepalive)
	ca, cb := openTunnel(t, a, b, "hi")

	// A writes a counting stream until the tunnel fails; B checks that
	// what it reads is exactly its beginning, then an error that says the
	// tunnel broke.
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		var k byte
		buf := make([]byte, 1000)
		for {
			for i := range buf {
				buf[i] = k
				k++
			}
			if _, err := ca.Write(buf); err != nil {
				wrote <- err
				return
			}
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
		}
	}()
	read := make(chan error, 1)
	var total int
	go func() {
		var k byte
		buf := make([]byte, 4096)
		for {
			n, err := cb.Read(buf)
			for _, c := range buf[:n] {
				if c != k {
					read <- errors.New("a byte is missing or out of order")
					return
				}
				k++
			}
			total += n
			if err != nil {
				read <- err
				return
			}
		}
	}()

	stopNATS(ns)
	startNATS(t, portOf(t, url))
	// Within the keepalive's bound the tunnel breaks, or it carries on
	// whole: then a closing A gives B io.EOF after every byte.
	var err error
	select {
	case err = <-read:
	case <-time.After(5 * k): // past the keepalive's bound: still going
	}
	close(stop)
	werr := within(t, "A's last Write", func() error { return <-wrote })
	if err == nil {
		if werr == nil {
			require.NoError(t, ca.Close())
		}
		err = within(t, "B reading to the end", func() error { return <-read })
	}
	if errors.Is(err, io.EOF) {
		require.NoError(t, werr, "the tunnel stayed whole")
		t.Logf("the tunnel stayed whole: B read %d bytes", total)
		return
	}
	require.ErrorIs(t, err, natsbroker.ErrTunnelBroken, "B read %d bytes", total)
	if werr != nil {
		require.ErrorIs(t, werr, natsbroker.ErrTunnelBroken)
	}
	t.Logf("the tunnel broke after %d bytes: %v", total, err)
}
