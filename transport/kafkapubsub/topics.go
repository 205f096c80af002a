package kafkapubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

const millisecond = time.Millisecond

// topicConfig is the configuration of created topics: the log is the
// source of truth and projections are rebuilt by replaying it, so nothing
// is ever deleted.
func topicConfig() map[string]*string {
	unlimited := "-1"
	return map[string]*string{"retention.ms": &unlimited}
}

// CreateTopics creates the topics that do not exist yet, with Partitions
// partitions and unlimited retention, and waits until each has a leader.
func (p *PubSub) CreateTopics(ctx context.Context, topics []string) (err error) {
	admin, err := sarama.NewClusterAdmin(p.cfg.Brokers, p.cfg.saramaConfig())
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer func() { err = errors.Join(err, admin.Close()) }()
	for _, t := range topics {
		err := admin.CreateTopic(t, &sarama.TopicDetail{
			NumPartitions:     p.cfg.Partitions,
			ReplicationFactor: p.cfg.ReplicationFactor,
			ConfigEntries:     topicConfig(),
		}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) && !strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return p.waitForLeaders(ctx, admin, topics)
}

func (p *PubSub) waitForLeaders(ctx context.Context, admin sarama.ClusterAdmin, topics []string) error {
	for {
		meta, err := admin.DescribeTopics(topics)
		if err == nil && allLed(meta) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topics: %w", errors.Join(ctx.Err(), err))
		case <-time.After(100 * millisecond):
		}
	}
}

func allLed(meta []*sarama.TopicMetadata) bool {
	for _, t := range meta {
		if !errors.Is(t.Err, sarama.ErrNoError) || len(t.Partitions) == 0 {
			return false
		}
		for _, part := range t.Partitions {
			if part.Leader < 0 {
				return false
			}
		}
	}
	return true
}
