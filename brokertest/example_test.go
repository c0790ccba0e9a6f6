package brokertest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/brokertest"
	"github.com/wszero/wszero/client"
)

// Two servers on one Hub are a cluster: a broadcast from one reaches the
// clients of the other.
func ExampleHub() {
	hub := brokertest.NewHub()
	quiet := wszero.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	a := wszero.New(quiet, wszero.WithBroker(hub.Broker()))
	b := wszero.New(quiet, wszero.WithBroker(hub.Broker()))
	b.On("ready", func(c *wszero.Client) {})
	tsA, tsB := httptest.NewServer(a), httptest.NewServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer tsA.Close()
	defer tsB.Close()
	defer a.Shutdown(ctx)
	defer b.Shutdown(ctx)

	news := make(chan string, 1)
	c, err := client.Dial(ctx, tsB.URL+"/ws", client.WithLogger(nil),
		client.WithHandler("news", func(p struct{ Text string }) { news <- p.Text }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_ = c.Call(ctx, "ready", nil, nil) // b has the client

	_ = a.Broadcast("news", wszero.Params{"text": "hello from a"})
	fmt.Println(<-news)
	// Output: hello from a
}
