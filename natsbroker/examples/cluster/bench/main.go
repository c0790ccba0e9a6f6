// Bench measures what spreading a wszero server over NATS costs: the same
// broadcasts to the same clients, first with one server in one process,
// then with three servers sharing an embedded NATS, the clients spread over
// them and the sender on the first. It prints deliveries per second (a burst
// of broadcasts, each to every client, all clients counted) and the latency
// from Broadcast to a client's read (paced broadcasts; with NATS, only the
// clients of the other two servers), side by side.
//
//	go run ./examples/cluster/bench
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/natsbroker"
)

func main() {
	clients := flag.Int("clients", 90, "clients, spread evenly over the servers")
	burst := flag.Int("burst", 2000, "broadcasts in the throughput run")
	paced := flag.Int("paced", 500, "broadcasts in the latency run, one every -every")
	every := flag.Duration("every", time.Millisecond, "the pause between paced broadcasts")
	flag.Parse()

	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		log.Fatal("NATS did not start")
	}
	defer ns.Shutdown()

	fmt.Printf("%d clients, a burst of %d broadcasts (%d deliveries), then %d broadcasts one every %v\n\n",
		*clients, *burst, *burst**clients, *paced, *every)
	fmt.Printf("%-34s %16s %12s %12s %12s\n", "", "deliveries/s", "latency p50", "p99", "max")
	for _, setup := range []struct {
		name  string
		nodes int
		nats  bool
	}{
		{"one process, no broker", 1, false},
		{"3 servers over NATS (cross-node)", 3, true},
	} {
		r := run(setup.nodes, setup.nats, ns.ClientURL(), *clients, *burst, *paced, *every)
		fmt.Printf("%-34s %16.0f %12v %12v %12v\n", setup.name, r.rate, r.p50, r.p99, r.max)
	}
}

type result struct {
	rate          float64
	p50, p99, max time.Duration
}

// run measures one setup.
func run(nodes int, nats bool, natsURL string, clients, burst, paced int, every time.Duration) result {
	quiet := wszero.WithLogger(nil)
	roomy := wszero.WithSendQueue(burst+paced+16, 1<<30)
	var servers []*wszero.Server
	var urls []string
	for range nodes {
		opts := []wszero.Option{quiet, roomy, wszero.WithMaxConnectionsPerIP(0)}
		if nats {
			b, err := natsbroker.Connect(natsURL, natsbroker.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
			if err != nil {
				log.Fatal(err)
			}
			opts = append(opts, wszero.WithBroker(b))
		}
		s := wszero.New(opts...)
		ts := httptest.NewServer(s)
		defer ts.Close()
		defer shutdown(s)
		servers = append(servers, s)
		urls = append(urls, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws")
	}

	// Clients count what they receive and note each paced message's latency.
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	got := make(chan struct{}, clients)
	var conns []*websocket.Conn
	for i := range clients {
		conn, _, err := websocket.DefaultDialer.Dial(urls[i%nodes], nil)
		if err != nil {
			log.Fatal(err)
		}
		conns = append(conns, conn)
		remote := i%nodes != 0 || nodes == 1 // with a broker, only the other nodes' clients count for latency
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					return
				}
				var m struct {
					Op string
					T  int64
				}
				if json.Unmarshal(data, &m) != nil {
					continue
				}
				switch m.Op {
				case "burst":
					n++
					if n == burst {
						got <- struct{}{}
					}
				case "paced":
					if !remote {
						continue
					}
					d := time.Since(time.Unix(0, m.T))
					mu.Lock()
					latencies = append(latencies, d)
					mu.Unlock()
				case "done":
					got <- struct{}{}
				}
			}
		}()
	}
	waitConnected(servers, clients)
	sender := servers[0]

	start := time.Now()
	for k := range burst {
		if err := sender.Broadcast("burst", wszero.Params{"n": k}); err != nil {
			log.Fatal(err)
		}
	}
	wait(got, clients, "the burst")
	elapsed := time.Since(start)

	for range paced {
		if err := sender.Broadcast("paced", wszero.Params{"t": time.Now().UnixNano()}); err != nil {
			log.Fatal(err)
		}
		time.Sleep(every)
	}
	if err := sender.Broadcast("done", nil); err != nil {
		log.Fatal(err)
	}
	wait(got, clients, "the paced run")
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()

	slices.Sort(latencies)
	q := func(p float64) time.Duration {
		return latencies[int(p*float64(len(latencies)-1))].Round(time.Microsecond)
	}
	return result{
		rate: float64(burst*clients) / elapsed.Seconds(),
		p50:  q(0.50), p99: q(0.99), max: q(1),
	}
}

// waitConnected waits until the servers have all the clients.
func waitConnected(servers []*wszero.Server, clients int) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, s := range servers {
			n += len(s.Clients())
		}
		if n == clients {
			return
		}
		if time.Now().After(deadline) {
			log.Fatalf("only %d of %d clients connected", n, clients)
		}
		time.Sleep(time.Millisecond)
	}
}

// wait waits for n signals on got.
func wait(got chan struct{}, n int, what string) {
	timeout := time.After(60 * time.Second)
	for range n {
		select {
		case <-got:
		case <-timeout:
			log.Fatalf("%s did not reach every client within 60 s", what)
		}
	}
}

// shutdown shuts s down, waiting at most 5 s.
func shutdown(s *wszero.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
}
