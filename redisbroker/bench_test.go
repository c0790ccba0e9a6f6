package redisbroker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/redisbroker"
)

// counter is a wszero.Node that counts the frames it is handed, and says
// when a count is reached.
type counter struct {
	id      string
	frames  atomic.Int64
	target  atomic.Int64
	reached chan struct{}
}

func (c *counter) ID() string { return c.id }

func (c *counter) Deliver(wszero.Target, []byte) {
	if c.frames.Add(1) == c.target.Load() {
		c.reached <- struct{}{}
	}
}

func (c *counter) Signal(string, []byte) {}
func (c *counter) Members(string) int    { return 0 }

// BenchmarkPublish measures how many 100-byte frames a second one node
// gets to another through Redis, published as the broker does (up to 512
// to a pipeline) and one PUBLISH to a round trip, in windows of 10,000
// (the queue never fills). Run it with -benchtime=200000x or more: each
// run starts a redis-server.
func BenchmarkPublish(b *testing.B) {
	const window = 10000
	for _, batch := range []int{1, 512} {
		b.Run(fmt.Sprintf("pipeline=%d", batch), func(b *testing.B) {
			srv := startRedis(b)
			start := func(c *counter) *redisbroker.Broker {
				br, err := redisbroker.Connect(srv.URL(), redisbroker.WithBatch(batch), redisbroker.WithLogger(logger()))
				require.NoError(b, err)
				require.NoError(b, br.Start(c))
				b.Cleanup(func() { require.NoError(b, br.Close(context.Background())) })
				return br
			}
			c := &counter{id: "receiver", reached: make(chan struct{}, 1)}
			start(c)
			sender := start(&counter{id: "sender", reached: make(chan struct{}, 1)})
			frame := make([]byte, 100)
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			began := time.Now()
			for sent := 0; sent < b.N; {
				n := min(window, b.N-sent)
				c.target.Store(int64(sent + n))
				for range n {
					require.NoError(b, sender.Publish(wszero.Target{}, frame))
				}
				sent += n
				select {
				case <-c.reached:
				case <-time.After(time.Minute):
					b.Fatalf("%d of %d frames arrived in a minute", c.frames.Load(), sent)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "frames/s")
		})
	}
}
