package wszerotest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/wszerotest"
)

func TestSmoke(t *testing.T) {
	s := wszero.New(wszero.WithLogger(nil))
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("say", func(c *wszero.Client, p struct{ Text string }) error { return s.Broadcast("said", wszero.Params{"text": p.Text}) })
	srv := wszerotest.NewServer(t, s)
	c := srv.Dial()
	require.Equal(t, 5.0, c.Call("add", wszero.Params{"a": 2, "b": 3}))
	require.Equal(t, `add: "a" should be a whole number, but got 2.5`, c.CallError("add", wszero.Params{"a": 2.5, "b": 3}))
	c.Send("say", wszero.Params{"text": "hi"})
	require.Equal(t, wszero.Params{"text": "hi"}, c.Expect("said"))
	c.Send("sya", nil)
	require.Equal(t, `no handler for "sya" — did you mean "say"?`, c.ExpectError())
}
