package main

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/natsbroker"
	"github.com/wszero/wszero/wszerotest"
)

// TestTwoCopies runs two copies of the chat on one NATS: a room spans them,
// whispers and counts cross them.
func TestTwoCopies(t *testing.T) {
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
		s := wszero.New(wszero.WithBroker(b), wszero.WithLogger(nil))
		addHandlers(s, name)
		brokers[i] = b
		copies[i] = wszerotest.NewServer(t, s)
	}
	ann, bob := copies[0].Dial(), copies[1].Dial()
	annID := ann.Expect("welcome")["id"].(string)
	require.Equal(t, "two", bob.Expect("welcome")["copy"])

	ann.Call("join", wszero.Params{"name": "ann", "room": "lobby"})
	// Copy one subscribes to the room in the background: wait until NATS knows.
	require.Eventually(t, func() bool { return slices.Contains(brokers[0].Groups(), "lobby") }, 5*time.Second, time.Millisecond)
	require.NoError(t, brokers[0].Conn().Flush())
	bob.Call("join", wszero.Params{"name": "bob", "room": "lobby"})
	require.Equal(t, "ann", ann.Expect("joined")["name"])
	require.Equal(t, "bob", ann.Expect("joined")["name"], "ann hears bob join, from the other copy")
	require.Eventually(t, func() bool { return bob.Call("count", nil) == 2.0 }, 5*time.Second, 10*time.Millisecond)

	ann.Send("say", wszero.Params{"text": "hi"})
	require.Equal(t, wszero.Params{"name": "ann", "text": "hi", "copy": "one"}, bob.Expect("said"))
	bob.Send("whisper", wszero.Params{"to": annID, "text": "psst"})
	require.Equal(t, "psst", ann.Expect("whisper")["text"])
}
