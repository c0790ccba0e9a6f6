// Workers hands out jobs from a web page to worker programs, one worker
// after another: the page asks, the server gives the job to the next
// worker in the group "workers", the worker does it and answers, and the
// server passes the answer back to the page that asked.
//
//	go run ./examples/workers           # the server: open http://localhost:8000
//	go run ./examples/workers -worker   # a worker: start two or three, in other terminals
//
// See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
)

func main() {
	worker := flag.Bool("worker", false, "be a worker: connect to the server and do the jobs it hands out")
	server := flag.String("server", "ws://localhost:8000/ws", "the server a worker connects to")
	name := flag.String("name", "", `the worker's name on the page (the server numbers workers without one: "worker 1", …)`)
	flag.Parse()

	if *worker {
		runWorker(*server, *name)
		return
	}
	addHandlers(wszero.Default()) // the server that wszero.RunServer runs
	wszero.RunServer(8000)
}

// noWorker is what the page shows when nobody is there to do its job.
const noWorker = "no worker is connected: start one with go run ./examples/workers -worker"

// addHandlers gives the server s its handlers. (They are in a function of
// their own so that main_test.go can give them to a test server too.)
func addHandlers(s *wszero.Server) {
	named := 0 // how many workers the server has named

	// Every page (and every worker) is told who works, as soon as it
	// connects, and again whenever a worker comes or goes.
	s.On("connect", func(c *wszero.Client) {
		_ = c.Send("workers", wszero.Params{"names": workerNames(s)})
	})
	tellWhoWorks := func(c *wszero.Client, p struct{ Group string }) {
		if p.Group == "workers" {
			_ = s.Broadcast("workers", wszero.Params{"names": workerNames(s)})
		}
	}
	s.On("group_join", tellWhoWorks) // the server raises these two itself
	s.On("group_leave", tellWhoWorks)

	// A worker program says "work" to become a worker. The server puts it
	// in the group "workers" and answers with its name.
	s.On("work", func(c *wszero.Client, p struct {
		Name string `json:"name,omitempty"`
	}) (string, error) {
		if name, ok := c.Get("name").(string); ok {
			return name, nil // a worker already
		}
		name := strings.TrimSpace(p.Name)
		if name == "" {
			named++
			name = fmt.Sprintf("worker %d", named)
		}
		if utf8.RuneCountInString(name) > 30 {
			return "", errors.New("choose a name of at most 30 letters")
		}
		c.Set("name", name)
		return name, c.AddToGroup("workers")
	})

	// A page asks for a job: it goes to one worker, the next in turn. The
	// job says which page asked ("for") and the page's own number for it
	// ("n"): the worker sends them back with the answer, to whichever
	// server it is connected to.
	s.On("job", func(c *wszero.Client, p struct {
		Kind, Text string
		N          int
	}) error {
		if p.Kind != "shout" && p.Kind != "count" && p.Kind != "reverse" {
			return errors.New(`a job's kind is "shout", "count" or "reverse"`)
		}
		if utf8.RuneCountInString(p.Text) > 500 {
			return errors.New("that text is too long: at most 500 letters")
		}
		err := s.SendToOne("workers", "job", wszero.Params{"kind": p.Kind, "text": p.Text, "for": c.ID(), "n": p.N})
		if errors.Is(err, wszero.ErrNoMembers) {
			return errors.New(noWorker)
		}
		return err
	})

	// A worker sends the answer: it goes back to the page that asked.
	s.On("done", func(c *wszero.Client, p struct {
		For    string
		N      int
		Answer string
	}) error {
		if !slices.Contains(c.Groups(), "workers") {
			return errors.New(`only workers send "done": send "work" first`)
		}
		// A page that has gone does not need its answer: no error for it.
		_ = s.SendTo(p.For, "result", wszero.Params{"n": p.N, "answer": p.Answer, "worker": c.Get("name")})
		return nil
	})
}

// workerNames lists the names of s's workers, in the order they connected.
func workerNames(s *wszero.Server) []string {
	names := []string{}
	for _, c := range s.Members("workers") {
		if name, ok := c.Get("name").(string); ok {
			names = append(names, name)
		}
	}
	return names
}

// runWorker is the worker program: it connects to the server at url,
// becomes a worker, and does the jobs it is given until Ctrl-C.
func runWorker(url, name string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	conn, err := startWorker(ctx, url, name, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	select {
	case <-ctx.Done(): // Ctrl-C
	case <-conn.Done():
	}
	conn.Close()
}

// startWorker connects to the server at url (ws://host:port/ws) as a
// worker called name ("" lets the server name it), and does the jobs the
// server hands it until the returned connection is closed. ctx bounds
// connecting. It prints what it does to out.
func startWorker(ctx context.Context, url, name string, out io.Writer) (*client.Conn, error) {
	var conn *client.Conn
	work := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var myName string
		if err := conn.Call(ctx, "work", wszero.Params{"name": name}, &myName); err != nil {
			return err
		}
		fmt.Fprintf(out, "working as %s\n", myName)
		return nil
	}
	conn, err := client.Dial(ctx, url,
		client.WithReconnect(client.Reconnect{}), // after a restart of the server, too
		client.WithOnReconnect(func() {
			if err := work(); err != nil { // a restarted server does not know this worker yet
				fmt.Fprintln(out, err)
			}
		}),
		client.WithHandler("workers", func(p struct{ Names []string }) {
			if len(p.Names) == 0 {
				p.Names = []string{"none yet"}
			}
			fmt.Fprintf(out, "workers now: %s\n", strings.Join(p.Names, ", "))
		}))
	if err != nil {
		return nil, fmt.Errorf("cannot reach the server at %s: start it first with go run ./examples/workers (%w)", url, err)
	}
	conn.On("job", func(p struct {
		Kind, Text string
		For        string // the page that asked
		N          int    // its number for the job
	}) error {
		answer := doJob(p.Kind, p.Text)
		fmt.Fprintf(out, "job: %s %q: %s\n", p.Kind, p.Text, answer)
		return conn.Send("done", wszero.Params{"for": p.For, "n": p.N, "answer": answer})
	})
	if err := work(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// doJob does one job: it shouts the text, counts its words, or writes it
// backwards.
func doJob(kind, text string) string {
	switch kind {
	case "shout":
		return strings.ToUpper(text)
	case "count":
		if n := len(strings.Fields(text)); n != 1 {
			return fmt.Sprintf("%d words", n)
		}
		return "1 word"
	case "reverse":
		letters := []rune(text)
		slices.Reverse(letters)
		return string(letters)
	}
	return "I do not know how to " + kind
}
