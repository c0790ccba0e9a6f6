// Cluster is a chat with rooms spread over several wszero servers that
// share one NATS: run two or three copies behind a reverse proxy, and
// people in one room talk to each other, and see who is in the room,
// whichever copy they reached.
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
	"encoding/json"
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
	"unicode/utf8"

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
	s := newCopy(b, *addr, wszero.WithTrustedProxies("127.0.0.1/32", "::1/128"))

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

// person is who a page is, as every copy sees it: the name typed, and
// the copy that serves the page. It is the client's identity, which
// Presence and OnPresence tell about every member, on every copy.
type person struct {
	Name string `json:"name"`
	Copy string `json:"copy"`
}

// newCopy makes one copy of the chat, called copy in messages, on the
// broker b.
func newCopy(b wszero.Broker, copy string, opts ...wszero.Option) *wszero.Server {
	// A page that has a name connects to /ws?name=Ada: the name is part
	// of who the client is, from the start.
	identify := wszero.WithAuthenticate(func(r *http.Request) (any, error) {
		name := strings.TrimSpace(r.URL.Query().Get("name"))
		if name == "" || utf8.RuneCountInString(name) > 30 {
			return nil, nil // no name yet: it may look, but not join
		}
		return person{Name: name, Copy: copy}, nil
	})
	s := wszero.New(append([]wszero.Option{wszero.WithBroker(b), identify}, opts...)...)
	addHandlers(s, copy)
	return s
}

// nameOf returns the name c's page connected with, or "".
func nameOf(c *wszero.Client) string {
	p, _ := c.Identity().(person)
	return p.Name
}

// someone is a member of a room as the page lists it.
func someone(m wszero.Member) wszero.Params {
	var p person
	_ = json.Unmarshal(m.Identity, &p) // a member with no identity has no name
	return wszero.Params{"id": m.ID, "name": p.Name, "copy": p.Copy, "away": m.Away}
}

// addHandlers gives s the chat's handlers; copy names the copy in messages.
func addHandlers(s *wszero.Server, copy string) {
	s.On("connect", func(c *wszero.Client) {
		_ = c.Send("welcome", wszero.Params{"id": c.ID(), "copy": copy, "name": nameOf(c)})
	})
	// join puts the page in a room, and answers with who is in it, on
	// every copy.
	s.On("join", func(c *wszero.Client, p struct{ Room string }) ([]wszero.Params, error) {
		name, room := nameOf(c), strings.TrimSpace(p.Room)
		if name == "" || room == "" {
			return nil, errors.New("choose a name of 1 to 30 letters, and a room")
		}
		if old, ok := c.Get("room").(string); ok {
			c.RemoveFromGroup(old)
		}
		c.Set("room", room)
		if err := c.AddToGroup(room); err != nil {
			return nil, err
		}
		if err := s.BroadcastTo(room, "joined", wszero.Params{"name": name, "id": c.ID(), "copy": copy}); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// A copy just heard of may be missing from the list: its members
		// come as "presence" messages when they are known.
		members, _ := s.Presence(ctx, room)
		people := []wszero.Params{}
		for _, m := range members {
			people = append(people, someone(m))
		}
		return people, nil
	})
	// Whoever joins or leaves a room, goes away (a dropped connection,
	// which may come back) or comes back, on any copy: this copy tells
	// its own pages in that room. (Every copy does the same for its own:
	// BroadcastTo would reach each page once from every copy.)
	s.OnPresence(func(ch wszero.PresenceChange) {
		msg := someone(ch.Member)
		msg["kind"], msg["room"] = ch.Kind.String(), ch.Group // kind: joined, left, away or back
		for _, c := range s.Members(ch.Group) {
			_ = c.Send("presence", msg)
		}
	})
	s.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		room, ok := c.Get("room").(string)
		if !ok {
			return errors.New("join a room first")
		}
		return s.BroadcastTo(room, "said", wszero.Params{"name": nameOf(c), "text": p.Text, "copy": copy})
	})
	s.On("whisper", func(c *wszero.Client, p struct{ To, Text string }) error {
		return s.SendTo(p.To, "whisper", wszero.Params{"name": nameOf(c), "id": c.ID(), "text": p.Text, "copy": copy})
	})
	s.On("count", func(c *wszero.Client) (int, error) {
		room, _ := c.Get("room").(string)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return s.CountMembers(ctx, room) // from what every copy told this one: no waiting
	})
	s.On("disconnect", func(c *wszero.Client) {
		if room, ok := c.Get("room").(string); ok {
			_ = s.BroadcastTo(room, "left", wszero.Params{"name": nameOf(c)})
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
