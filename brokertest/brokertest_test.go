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
