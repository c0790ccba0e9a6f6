package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
)

func ExampleDial() {
	// A wszero server to talk to, in this process.
	s := wszero.New()
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws" // like ws://localhost:8000/ws

	ctx := context.Background()
	c, err := client.Dial(ctx, url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var sum int
	if err := c.Call(ctx, "add", wszero.Params{"a": 2, "b": 3}, &sum); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum)
	// Output: 5
}

func ExampleConn_On() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	// Handlers take the message's keys as a struct (or wszero.Params), the
	// way the server's do, without the *wszero.Client.
	heard := make(chan struct{})
	c.On("said", func(p struct{ Text, From string }) {
		fmt.Printf("%s said %q\n", p.From, p.Text)
		close(heard)
	})
	if err := c.Send("say", wszero.Params{"text": "hello"}); err != nil {
		fmt.Println(err)
		return
	}
	<-heard
	// Output: a Go program said "hello"
}

func ExampleConn_Call() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(ctx, url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var balance int
	err = c.Call(ctx, "withdraw", wszero.Params{"amount": 30}, &balance)
	fmt.Println(balance, err)

	// The handler's error, or what was wrong with the message, comes back
	// as a *client.ServerError.
	err = c.Call(ctx, "withdraw", wszero.Params{"amount": 500}, &balance)
	var se *client.ServerError
	if errors.As(err, &se) {
		fmt.Printf("%s failed: %s\n", se.Op, se.Message)
	}
	err = c.Call(ctx, "withdraw", wszero.Params{"amuont": 5}, &balance)
	fmt.Println(err)
	// Output:
	// 70 <nil>
	// withdraw failed: only 70 left
	// server: withdraw got "amuont" — did you mean "amount"?
}

// exampleServer serves a wszero server on a loopback address and returns
// its endpoint, and a function that stops it.
func exampleServer() (url string, stop func()) {
	s := wszero.New(wszero.WithLogger(nil))
	s.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		return s.Broadcast("said", wszero.Params{"text": p.Text, "from": "a Go program"})
	})
	balance := 100
	s.On("withdraw", func(c *wszero.Client, p struct{ Amount int }) (int, error) {
		if p.Amount > balance {
			return 0, fmt.Errorf("only %d left", balance)
		}
		balance -= p.Amount
		return balance, nil
	})
	ts := httptest.NewServer(s)
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", func() {
		s.Shutdown(context.Background())
		ts.Close()
	}
}

func ExampleWithOnSession() {
	s := wszero.New(wszero.WithLogger(nil))
	whoIs := make(chan string, 1)
	s.On("connect", func(c *wszero.Client) { whoIs <- c.ID() })
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"

	// After every connection: who this client is on the server, and, after
	// a reconnection, whether it resumed (the same client, with what it
	// missed) or not (a new one, and why).
	sessions := make(chan client.Session, 1)
	c, err := client.Dial(context.Background(), url,
		client.WithReconnect(client.Reconnect{}),
		client.WithOnSession(func(s client.Session) { sessions <- s }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	first := <-sessions
	fmt.Println("resumed:", first.Resumed)
	fmt.Println("the server's ID for it:", first.ID == <-whoIs, c.ID() == first.ID)
	// Output:
	// resumed: false
	// the server's ID for it: true true
}
