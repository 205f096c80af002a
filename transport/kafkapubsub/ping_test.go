package kafkapubsub_test

import (
	"context"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/kafkapubsub"
)

// TestPing checks Ping against a real Kafka-protocol broker (kfake) behind
// a proxy: it answers while the broker is reachable, fails within its
// deadline while the connection is cut, and answers again after.
func TestPing(t *testing.T) {
	brokers, proxy := testenv.ProxiedKafka(t)
	ps, err := kafkapubsub.New(kafkapubsub.Config{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ping := func() (error, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		err := ps.Ping(ctx)
		return err, time.Since(start)
	}
	if err, _ := ping(); err != nil {
		t.Fatalf("ping of a running broker: %v", err)
	}
	proxy.Cut()
	err, took := ping()
	if err == nil {
		t.Fatal("ping succeeded while the broker was cut off")
	}
	if took > 3*time.Second {
		t.Errorf("ping took %s while cut off; its deadline was 2 s", took)
	}
	t.Logf("cut off: %v (after %s)", err, took.Round(time.Millisecond))
	proxy.Restore()
	if err, _ := ping(); err != nil {
		t.Fatalf("ping after the broker came back: %v", err)
	}
}
