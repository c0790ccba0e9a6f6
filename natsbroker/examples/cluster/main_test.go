package main

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/internal/cutproxy"
	"github.com/wszero/wszero/natsbroker"
	"github.com/wszero/wszero/wszerotest"
	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the tests: the copies, their
// brokers, NATS and the proxy are all stopped by the tests' cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// twoCopies runs two copies of the chat, "one" and "two", on one NATS
// embedded in the test.
func twoCopies(t *testing.T) ([]*wszerotest.Server, []*natsbroker.Broker) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(5*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	copies := make([]*wszerotest.Server, 2)
	brokers := make([]*natsbroker.Broker, 2)
	for i, name := range []string{"one", "two"} {
		b, err := natsbroker.Connect(ns.ClientURL(), natsbroker.WithLogger(nil))
		require.NoError(t, err)
		brokers[i] = b
		copies[i] = wszerotest.NewServer(t, newCopy(b, name, wszero.WithLogger(nil)))
	}
	return copies, brokers
}

// dialAs connects to endpoint (srv's, or a proxy's in front of it) as the
// page of someone who typed name: /ws?name=….
func dialAs(srv *wszerotest.Server, endpoint, name string, opts ...client.Option) *wszerotest.Client {
	t := srv.URL
	srv.URL = endpoint + "?name=" + url.QueryEscape(name) // wszerotest dials srv.URL
	defer func() { srv.URL = t }()
	return srv.Dial(opts...)
}

// TestTwoCopies runs two copies of the chat on one NATS: a room spans them,
// whispers and counts cross them.
func TestTwoCopies(t *testing.T) {
	copies, brokers := twoCopies(t)
	ann, bob := dialAs(copies[0], copies[0].URL, "ann"), dialAs(copies[1], copies[1].URL, "bob")
	annID := ann.Expect("welcome")["id"].(string)
	require.Equal(t, wszero.Params{"id": bob.Conn().ID(), "name": "bob", "copy": "two"}, bob.Expect("welcome"))

	ann.Call("join", wszero.Params{"room": "lobby"})
	// Copy one subscribes to the room in the background: wait until NATS knows.
	require.Eventually(t, func() bool { return slices.Contains(brokers[0].Groups(), "lobby") }, 5*time.Second, time.Millisecond)
	require.NoError(t, brokers[0].Conn().Flush())
	bob.Call("join", wszero.Params{"room": "lobby"})
	require.Equal(t, "ann", ann.Expect("joined")["name"])
	require.Equal(t, "bob", ann.Expect("joined")["name"], "ann hears bob join, from the other copy")
	require.Eventually(t, func() bool { return bob.Call("count", nil) == 2.0 }, 5*time.Second, 10*time.Millisecond)

	ann.Send("say", wszero.Params{"text": "hi"})
	require.Equal(t, wszero.Params{"name": "ann", "text": "hi", "copy": "one"}, bob.Expect("said"))
	bob.Send("whisper", wszero.Params{"to": annID, "text": "psst"})
	require.Equal(t, "psst", ann.Expect("whisper")["text"])

	t.Run("a page without a name may not join", func(t *testing.T) {
		nobody := copies[0].Dial()
		require.Equal(t, "", nobody.Expect("welcome")["name"])
		require.Equal(t, "choose a name of 1 to 30 letters, and a room", nobody.CallError("join", wszero.Params{"room": "lobby"}))
		long := dialAs(copies[0], copies[0].URL, strings.Repeat("x", 31))
		require.Equal(t, "choose a name of 1 to 30 letters, and a room", long.CallError("join", wszero.Params{"room": "lobby"}))
	})
}

// roomList is a page's list of who is in its room, kept as the page keeps
// it: the list that join answers with, then the "presence" messages.
type roomList struct {
	t    *testing.T
	c    *wszerotest.Client
	room string
	who  map[string]string // by ID: "ann, on copy one", with " (away)"
}

// join joins room and starts the list from join's answer.
func join(t *testing.T, c *wszerotest.Client, room string) *roomList {
	t.Helper()
	l := &roomList{t: t, c: c, room: room, who: map[string]string{}}
	for _, p := range c.Call("join", wszero.Params{"room": room}).([]any) {
		l.set(p.(map[string]any))
	}
	return l
}

func (l *roomList) set(p map[string]any) {
	line := fmt.Sprintf("%s, on copy %s", p["name"], p["copy"])
	if p["away"] == true {
		line += " (away)"
	}
	l.who[p["id"].(string)] = line
}

// waitFor takes "presence" messages until the list is exactly lines, in
// any order; it fails after the client's Timeout.
func (l *roomList) waitFor(lines ...string) {
	l.t.Helper()
	slices.Sort(lines)
	for !slices.Equal(slices.Sorted(maps.Values(l.who)), lines) {
		p := l.c.Expect("presence")
		switch {
		case p["room"] != l.room:
			l.t.Fatalf("a page in %q was told of a change in %q: %v", l.room, p["room"], p)
		case p["kind"] == "left":
			delete(l.who, p["id"].(string))
		default:
			l.set(p)
		}
	}
}

// TestWhoIsInTheRoom: the list of who is in a room spans the copies. A
// person who joins on copy one is in the list of a page on copy two, at
// once, pushed; shown away while their network is down, back when it is
// back; and gone when they leave.
func TestWhoIsInTheRoom(t *testing.T) {
	copies, _ := twoCopies(t)
	bob := dialAs(copies[1], copies[1].URL, "bob")
	bobs := join(t, bob, "lobby")
	bobs.waitFor("bob, on copy two")

	// Ann's page reaches copy one through a network that the test can cut.
	proxy := cutproxy.Start(t, strings.TrimPrefix(copies[0].HTTP.URL, "http://"))
	ann := dialAs(copies[0], "ws://"+proxy.Addr()+"/ws", "ann", client.WithReconnect(client.Reconnect{MinDelay: 10 * time.Millisecond}))
	anns := join(t, ann, "lobby")
	anns.waitFor("ann, on copy one", "bob, on copy two")
	bobs.waitFor("ann, on copy one", "bob, on copy two")

	t.Run("someone whose network drops is away, then back", func(t *testing.T) {
		proxy.Down()
		bobs.waitFor("ann, on copy one (away)", "bob, on copy two")
		proxy.Up()
		bobs.waitFor("ann, on copy one", "bob, on copy two")
	})

	t.Run("someone in another room is not listed", func(t *testing.T) {
		cy := dialAs(copies[0], copies[0].URL, "cy")
		join(t, cy, "garden").waitFor("cy, on copy one")
		dee := dialAs(copies[1], copies[1].URL, "dee")
		join(t, dee, "lobby").waitFor("ann, on copy one", "bob, on copy two", "dee, on copy two")
		anns.waitFor("ann, on copy one", "bob, on copy two", "dee, on copy two")
		dee.Close()
		anns.waitFor("ann, on copy one", "bob, on copy two")
	})

	t.Run("someone who leaves is gone from every copy's list", func(t *testing.T) {
		ann.Close()
		bobs.waitFor("bob, on copy two")
	})
}
