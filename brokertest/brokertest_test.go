package brokertest_test

import (
	"testing"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/brokertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestOneNode runs the suite on the in-process default: one server, no
// broker. The subtests that need more nodes say so and skip.
func TestOneNode(t *testing.T) {
	brokertest.Run(t, nil)
}

// TestHub runs the suite on the Hub's brokers: every subtest, on two and
// three nodes.
func TestHub(t *testing.T) {
	hub := brokertest.NewHub()
	brokertest.Run(t, func(t *testing.T) wszero.Broker { return hub.Broker() })
}

// earlyBroker is a Hub broker that, like a broker whose subscriptions are
// live before its Start returns (redisbroker's), hands its node a signal
// of another node's before Start returns.
type earlyBroker struct{ wszero.Broker }

// Start starts the Hub's broker, then hands the node a hi from another
// node, on a goroutine of its own as deliveries come, and waits for it.
func (b earlyBroker) Start(n wszero.Node) error {
	if err := b.Broker.Start(n); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Signal("other", []byte(`p{"k":"hi","every":50}`))
	}()
	<-done
	return nil
}

// TestABrokerMayDeliverBeforeStartReturns: a signal that reaches a server
// while New is starting its broker is taken in like any other.
func TestABrokerMayDeliverBeforeStartReturns(t *testing.T) {
	hub := brokertest.NewHub()
	s := wszero.New(wszero.WithBroker(earlyBroker{hub.Broker()}))
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
