// Package brokertest checks that a wszero.Broker makes a cluster of
// wszero servers behave as one server, in the spirit of testing/slogtest:
// the author of a new engine checks it with one call.
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) wszero.Broker {
//			b, err := mybroker.Connect(addr) // a new node of one cluster
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		})
//	}
//
// Run's subtests start clusters of two or three wszero servers (nodes),
// one per broker, each behind an httptest server on 127.0.0.1, connect Go
// clients (package github.com/wszero/wszero/client) to them, and check
// what the clients receive and what the servers say: broadcasts, sends,
// SendToOne's turns, Presence and OnPresence, nodes that stop or go
// silent, and sessions that resume on another node. Run(t, nil) checks
// the in-process default, a server alone: the subtests that need more
// nodes are skipped, saying so, and the others run the same way.
//
// Hub is an in-memory engine that passes the suite: a cluster of servers
// in one process, for tests.
package brokertest

import (
	"testing"

	"github.com/wszero/wszero"
)

// Run checks the broker that newBroker makes: each call returns a new
// broker, not yet started, joined to the same cluster as the brokers of
// the calls before (the same NATS, the same Redis, the same Hub), which
// one server of the subtest t takes with wszero.WithBroker and closes at
// its Shutdown. A nil newBroker checks a server without a broker, on one
// node.
//
// The subtests do not run in parallel: at any time, the running servers
// of a cluster are those of one subtest. Their servers use a presence
// interval of 50 ms (wszero.WithPresenceInterval), so that a silent node
// is noticed fast, and every wait is bounded (10 s). Besides the
// wszero.Broker contract, they require of the broker:
//
//   - what a node publishes to a group reaches the members on another
//     node once its Presence lists them: a broker subscribes to a group
//     (GroupChanged) before it carries the presence signals the server
//     sends next;
//   - Close may come while the server still runs: to make a node silent,
//     as a crash or a partition does, a subtest closes the node's broker
//     underneath it (and the server's own Close, at its Shutdown, is not
//     passed on). Its members must leave the other nodes' Presence within
//     four presence intervals: three of silence, and the others' next
//     look.
func Run(t *testing.T, newBroker func(t *testing.T) wszero.Broker) {
	t.Helper()
	su := &suite{newBroker: newBroker}
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) { st.run(t, su) })
	}
}

// subtests are Run's, in order: each names the behaviour it checks.
var subtests = []struct {
	name string
	run  func(t *testing.T, su *suite)
}{
	{"BroadcastReachesEveryClientOnEveryNodeOnce", testBroadcast},
	{"BroadcastToReachesOnlyTheGroupsMembers", testBroadcastTo},
	{"BroadcastOthersReachesAllButTheSender", testBroadcastOthers},
	{"BroadcastToOthersReachesTheGroupButTheSender", testBroadcastToOthers},
	{"SendToReachesAClientOnAnyNode", testSendTo},
	{"ClientFindsOnlyThisNodesClients", testClient},
	{"SendToOneTakesEveryNodesMembersInTurn", testSendToOne},
	{"PresenceListsEveryNodesMembers", testPresence},
	{"PresenceShowsAwayMembers", testPresenceAway},
	{"CountMembersAgreesWithPresence", testCountMembers},
	{"OnPresenceSeesAnotherNodesChanges", testOnPresence},
	{"GroupJoinAndLeaveRunForThisNodesClients", testGroupOps},
	{"ALateNodeLearnsThePresenceOfTheOthers", testLateNode},
	{"ANodeThatShutsDownLeavesAtOnce", testShutdown},
	{"ASilentNodeLeavesWithinFourIntervals", testSilent},
	{"ASessionResumesOnAnotherNode", testResume},
}
