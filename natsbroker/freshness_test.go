package natsbroker_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/wszero/wszero"
)

// BenchmarkPresenceFreshness measures how fresh another node's presence
// is over NATS: the time from AddToGroup on one node to the change
// reaching OnPresence on another (ns/op; the join's signal crosses NATS
// once, and Presence there lists the member from then on).
func BenchmarkPresenceFreshness(b *testing.B) {
	_, nodes := cluster(b, 2)
	seen := make(chan wszero.PresenceChange, 1)
	nodes[0].s.OnPresence(func(ch wszero.PresenceChange) {
		if ch.Kind == wszero.Joined {
			seen <- ch
		}
	})
	c := dial(b, nodes[1]).client()
	b.ResetTimer()
	for i := range b.N {
		group := "g" + strconv.Itoa(i)
		if err := c.AddToGroup(group); err != nil {
			b.Fatal(err)
		}
		select {
		case ch := <-seen:
			if ch.Group != group {
				b.Fatalf("saw a join of %q, want %q", ch.Group, group)
			}
		case <-time.After(testTimeout):
			b.Fatal("the join never reached the other node")
		}
		c.RemoveFromGroup(group)
	}
}
