package wszero

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("announce", func(c *Client, p struct{ Text string }) error {
		return s.Broadcast("announce", Params{"text": p.Text})
	})
	a, b := dial(t, ts), dial(t, ts)
	r := a.call(1, map[string]any{"op": "add", "a": 2, "b": 3})
	require.Equal(t, map[string]any{"op": "_reply", "_ref": 1.0, "result": 5.0}, r)
	b.send(`{"op":"announce","text":"hi"}`)
	require.Equal(t, "hi", a.expect("announce")["text"])
	require.Equal(t, "hi", b.expect("announce")["text"])
	a.send(`{"op":"anounce","text":"hi"}`)
	require.Equal(t, `no handler for "anounce" — did you mean "announce"?`, a.expect("error")["msg"])
	a.send(`{"op":"add","a":2,"bb":3}`)
	t.Log(a.expect("error")["msg"])
	a.send(`{"op":"add","a":2.5,"b":3}`)
	t.Log(a.expect("error")["msg"])
}
