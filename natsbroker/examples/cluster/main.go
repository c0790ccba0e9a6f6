// Cluster is a chat with rooms spread over several wszero servers that
// share one NATS: run two or three copies behind a reverse proxy, and
// people in one room talk to each other whichever copy they reached.
//
//	go run ./examples/cluster -addr :8001 -embed-nats   # the first copy runs NATS too
//	go run ./examples/cluster -addr :8002
//	go run ./examples/cluster -addr :8003
//
// See README.md for the reverse proxy and the benchmark.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"io/fs"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/natsbroker"
)

//go:embed static
var static embed.FS

func main() {
	addr := flag.String("addr", ":8001", "the address this copy serves")
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "the NATS server all copies share")
	embedNATS := flag.Bool("embed-nats", false, "run the NATS server in this process, at -nats's host and port")
	flag.Parse()

	if *embedNATS {
		ns, err := startNATS(*natsURL)
		if err != nil {
			log.Fatalf("cluster: cannot run NATS at %s: %v", *natsURL, err)
		}
		defer ns.Shutdown()
	}
	b, err := natsbroker.Connect(*natsURL)
	if err != nil {
		log.Fatalf("cluster: %v (start the first copy with -embed-nats, or run nats-server)", err)
	}
	// Behind the proxy every page comes from the proxy's address: trust it
	// for the per-address limit. (The proxy passes the Host header on, so
	// the same-origin check needs nothing more.)
	s := wszero.New(wszero.WithBroker(b), wszero.WithTrustedProxies("127.0.0.1/32", "::1/128"))
	addHandlers(s, *addr)

	pages, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("/ws", s)
	mux.Handle("/wszero.js", s)
	mux.Handle("/", http.FileServerFS(pages))
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	stop, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	go func() {
		<-stop.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx) // says goodbye to every page, then drains NATS
		_ = srv.Shutdown(ctx)
	}()
	slog.Info("cluster: serving", "addr", *addr, "nats", *natsURL)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// addHandlers gives s the chat's handlers; copy names the copy in messages.
func addHandlers(s *wszero.Server, copy string) {
	s.On("connect", func(c *wszero.Client) {
		_ = c.Send("welcome", wszero.Params{"id": c.ID(), "copy": copy})
	})
	s.On("join", func(c *wszero.Client, p struct{ Name, Room string }) error {
		name, room := strings.TrimSpace(p.Name), strings.TrimSpace(p.Room)
		if name == "" || room == "" {
			return errors.New("choose a name and a room")
		}
		if old, ok := c.Get("room").(string); ok {
			c.RemoveFromGroup(old)
		}
		c.Set("name", name)
		c.Set("room", room)
		if err := c.AddToGroup(room); err != nil {
			return err
		}
		return s.BroadcastTo(room, "joined", wszero.Params{"name": name, "id": c.ID(), "copy": copy})
	})
	s.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		room, ok := c.Get("room").(string)
		if !ok {
			return errors.New("join a room first")
		}
		return s.BroadcastTo(room, "said", wszero.Params{"name": c.Get("name"), "text": p.Text, "copy": copy})
	})
	s.On("whisper", func(c *wszero.Client, p struct{ To, Text string }) error {
		return s.SendTo(p.To, "whisper", wszero.Params{"name": c.Get("name"), "id": c.ID(), "text": p.Text, "copy": copy})
	})
	s.On("count", func(c *wszero.Client) (int, error) {
		room, _ := c.Get("room").(string)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return s.CountMembers(ctx, room) // approximate: the other copies answer within 100 ms
	})
	s.On("disconnect", func(c *wszero.Client) {
		if room, ok := c.Get("room").(string); ok {
			_ = s.BroadcastTo(room, "left", wszero.Params{"name": c.Get("name")})
		}
	})
}

// startNATS runs a NATS server in this process at natsURL's host and port.
func startNATS(natsURL string) (*server.Server, error) {
	u, err := url.Parse(natsURL)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, errors.New("the NATS address needs a port, like nats://127.0.0.1:4222")
	}
	ns, err := server.NewServer(&server.Options{Host: u.Hostname(), Port: port, NoSigs: true})
	if err != nil {
		return nil, err
	}
	ns.ConfigureLogger()
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		return nil, errors.New("NATS did not start within 5 s")
	}
	return ns, nil
}
