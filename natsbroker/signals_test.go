package natsbroker_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/natsbroker"
)

// fakeNode is a broker started with a fake wszero.Node that keeps what
// the broker hands it, in order.
type fakeNode struct {
	id string
	b  *natsbroker.Broker

	mu      sync.Mutex
	got     []string // "signal <from> <msg>" or "frame <group>/<client> <frame>"
	arrived chan struct{}
}

func (n *fakeNode) ID() string         { return n.id }
func (n *fakeNode) Members(string) int { return 0 }
func (n *fakeNode) Deliver(to wszero.Target, frame []byte) {
	n.record(fmt.Sprintf("frame %s/%s %s", to.Group, to.Client, frame))
}
func (n *fakeNode) Signal(from string, msg []byte) {
	if len(msg) > 100 {
		msg = []byte(digest(msg))
	}
	n.record(fmt.Sprintf("signal %s %s", from, msg))
}

// digest stands for a long message in what a fakeNode keeps.
func digest(msg []byte) string {
	return fmt.Sprintf("%d bytes, sha256 %x", len(msg), sha256.Sum256(msg))
}

func (n *fakeNode) record(s string) {
	n.mu.Lock()
	n.got = append(n.got, s)
	n.mu.Unlock()
	select {
	case n.arrived <- struct{}{}:
	default:
	}
}

// waitFor waits until the node has been handed last, and returns all it
// was handed until then.
func (n *fakeNode) waitFor(t testing.TB, last string) []string {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		n.mu.Lock()
		got := append([]string(nil), n.got...)
		n.mu.Unlock()
		for i, g := range got {
			if g == last {
				return got[:i+1]
			}
		}
		select {
		case <-n.arrived:
		case <-deadline:
			t.Fatalf("node %s was not handed %q in %v; it has %q", n.id, last, testTimeout, got)
		}
	}
}

// startFakeNodes starts NATS and a broker for each ID, each with a fake
// node; they are closed when the test ends.
func startFakeNodes(t testing.TB, ids ...string) []*fakeNode {
	t.Helper()
	ns := startNATS(t, -1)
	var nodes []*fakeNode
	for _, id := range ids {
		b, err := natsbroker.Connect(ns.ClientURL(), natsbroker.WithLogger(logger()))
		require.NoError(t, err)
		n := &fakeNode{id: id, b: b, arrived: make(chan struct{}, 1)}
		require.NoError(t, b.Start(n))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			_ = b.Close(ctx)
		})
		nodes = append(nodes, n)
	}
	return nodes
}

func TestSignalReachesOneNodeOrEveryOtherInOrderWithFrames(t *testing.T) {
	nodes := startFakeNodes(t, "nodeA", "nodeB", "nodeC")
	a, b, c := nodes[0], nodes[1], nodes[2]
	var wantB, wantC []string
	for k := range 50 {
		// To B alone, to everyone, and a broadcast, interleaved: each
		// node has them in the order A sent them, whatever the subject.
		msg := fmt.Sprintf("to B %d", k)
		require.NoError(t, a.b.Signal(b.id, []byte(msg)))
		wantB = append(wantB, "signal nodeA "+msg)
		msg = fmt.Sprintf("to all %d", k)
		require.NoError(t, a.b.Signal("", []byte(msg)))
		wantB, wantC = append(wantB, "signal nodeA "+msg), append(wantC, "signal nodeA "+msg)
		frame := fmt.Sprintf(`{"n":%d}`, k)
		require.NoError(t, a.b.Publish(wszero.Target{}, []byte(frame)))
		wantB, wantC = append(wantB, "frame / "+frame), append(wantC, "frame / "+frame)
	}
	require.NoError(t, a.b.Signal("", []byte("end")))
	wantB, wantC = append(wantB, "signal nodeA end"), append(wantC, "signal nodeA end")
	require.Equal(t, wantB, b.waitFor(t, "signal nodeA end"))
	require.Equal(t, wantC, c.waitFor(t, "signal nodeA end"))

	// Nothing comes back to A: a marker from B to everyone is all it has.
	require.NoError(t, b.b.Signal("", []byte("from B")))
	require.Equal(t, []string{"signal nodeB from B"}, a.waitFor(t, "signal nodeB from B"))
}

func TestSignalCarriesMaxSignalBytesUnchanged(t *testing.T) {
	nodes := startFakeNodes(t, "nodeA", "nodeB")
	a, b := nodes[0], nodes[1]
	big := make([]byte, wszero.MaxSignal)
	for i := range big {
		big[i] = byte(i * 31)
	}
	require.NoError(t, a.b.Signal(b.id, big))
	require.NoError(t, a.b.Signal(b.id, []byte("after")))
	require.Equal(t, []string{"signal nodeA " + digest(big), "signal nodeA after"}, b.waitFor(t, "signal nodeA after"))

	require.ErrorContains(t, a.b.Signal(b.id, make([]byte, wszero.MaxSignal+1)), "MaxSignal")
	require.ErrorContains(t, a.b.Signal("not.a.node", []byte("x")), "not a node ID")
	require.ErrorContains(t, a.b.Signal(strings.Repeat("x", 100), []byte("x")), "not a node ID")
}

func TestPublishCarriesTheWholeTarget(t *testing.T) {
	nodes := startFakeNodes(t, "nodeA", "nodeB")
	a, b := nodes[0], nodes[1]
	for _, to := range []wszero.Target{
		{Client: "nodeB.c1"},
		{Client: "nodeB.c2", Group: "red team/é\r\n"}, // SendToOne: the client, or another member of the group there
	} {
		require.NoError(t, a.b.Publish(to, []byte("hi")))
	}
	require.NoError(t, a.b.Signal("", []byte("end")))
	require.Equal(t, []string{
		"frame /nodeB.c1 hi",
		"frame red team/é\r\n/nodeB.c2 hi",
		"signal nodeA end",
	}, b.waitFor(t, "signal nodeA end"))
	require.ErrorContains(t, a.b.Publish(wszero.Target{Client: "nonode"}, []byte("x")), "not the ID of a client")
}

func TestSignalAfterCloseFails(t *testing.T) {
	nodes := startFakeNodes(t, "nodeA")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, nodes[0].b.Close(ctx))
	require.ErrorIs(t, nodes[0].b.Signal("", []byte("x")), natsbroker.ErrClosed)
	require.ErrorIs(t, nodes[0].b.Signal("nodeB", []byte("x")), natsbroker.ErrClosed)
}
