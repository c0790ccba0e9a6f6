package natsbroker_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/brokertest"
	"github.com/wszero/wszero/natsbroker"
)

// TestConformance runs the brokers' conformance suite on natsbroker: each
// broker is a new node on the same NATS.
func TestConformance(t *testing.T) {
	ns := startNATS(t, -1)
	brokertest.Run(t, func(t *testing.T) wszero.Broker {
		b, err := natsbroker.Connect(ns.ClientURL(), natsbroker.WithLogger(logger()))
		require.NoError(t, err)
		return b
	})
}
