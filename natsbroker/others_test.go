package natsbroker_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
)

// TestBroadcastOthersReachesEveryNode: everyone but the sender hears it,
// on every node; the sender does not. The same for a group.
func TestBroadcastOthersReachesEveryNode(t *testing.T) {
	_, nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	sender, here, there, outsider := dial(t, a), dial(t, a), dial(t, b), dial(t, b)
	for _, p := range []*peer{sender, here, there} {
		require.NoError(t, p.client().AddToGroup("red"))
	}
	subscribed(t, a, "red", true)
	subscribed(t, b, "red", true)
	require.NoError(t, sender.client().BroadcastOthers("said", wszero.Params{"n": 1}))
	require.NoError(t, sender.client().BroadcastToOthers("red", "team", wszero.Params{"n": 2}))
	for _, p := range []*peer{here, there} {
		p.waitFor("said", 1)
		p.waitFor("team", 1)
	}
	outsider.waitFor("said", 1)
	// A marker sent after both: once it is in, nothing else may come.
	require.NoError(t, a.s.Broadcast("end", nil))
	for _, p := range []*peer{sender, outsider} {
		p.waitFor("end", 1)
	}
	require.Empty(t, sender.messages("said"), "the sender does not hear itself")
	require.Empty(t, sender.messages("team"))
	require.Empty(t, outsider.messages("team"), "outside the group")
}
