package kafkapubsub

import (
	"slices"
	"testing"

	"github.com/IBM/sarama"
)

func TestConfigValidate(t *testing.T) {
	for _, bad := range []Config{{}, {Brokers: []string{"kafka"}}, {Brokers: []string{"kafka:9092"}, Partitions: -1}} {
		if _, err := New(bad, nil); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	ps, err := New(Config{Brokers: ParseBrokers(" a:1, b:2 ,")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ps.Config()
	if !slices.Equal(cfg.Brokers, []string{"a:1", "b:2"}) || cfg.Partitions != 12 || cfg.ReplicationFactor != 1 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestProducerIsIdempotentWithAllAcks pins the delivery guarantees.
func TestProducerIsIdempotentWithAllAcks(t *testing.T) {
	sc := Config{Brokers: []string{"a:1"}}.producerConfig()
	if sc.Producer.RequiredAcks != sarama.WaitForAll || !sc.Producer.Idempotent || sc.Net.MaxOpenRequests != 1 {
		t.Fatalf("producer: acks %v idempotent %v", sc.Producer.RequiredAcks, sc.Producer.Idempotent)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("sarama rejects the producer config: %v", err)
	}
	if c := (Config{Brokers: []string{"a:1"}}).consumerConfig(sarama.OffsetOldest); c.Consumer.Offsets.Initial != sarama.OffsetOldest {
		t.Fatal("new groups must start at the oldest offset")
	}
}
