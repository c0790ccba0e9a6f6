package redisbroker_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/brokertest"
	"github.com/wszero/wszero/redisbroker"
)

// TestConformance runs the brokers' conformance suite on redisbroker:
// each broker is a new node on the same Redis.
func TestConformance(t *testing.T) {
	r := startRedis(t)
	brokertest.Run(t, func(t *testing.T) wszero.Broker {
		b, err := redisbroker.Connect(r.URL(), redisbroker.WithLogger(logger()))
		require.NoError(t, err)
		return b
	})
}
