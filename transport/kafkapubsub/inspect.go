package kafkapubsub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// inspectTimeout bounds each network call of an Inspector.
const inspectTimeout = 5 * time.Second

// Inspector reports topic sizes and consumer-group lag, for metrics and
// readiness. It keeps one client and one admin connection; Close them.
type Inspector struct {
	client sarama.Client
	admin  sarama.ClusterAdmin
}

// NewInspector connects an Inspector to the brokers.
func (p *PubSub) NewInspector() (*Inspector, error) {
	conf := p.cfg.saramaConfig()
	conf.Net.DialTimeout, conf.Net.ReadTimeout, conf.Net.WriteTimeout = inspectTimeout, inspectTimeout, inspectTimeout
	client, err := sarama.NewClient(p.cfg.Brokers, conf)
	if err != nil {
		return nil, fmt.Errorf("kafka inspector: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka inspector: %w", err)
	}
	return &Inspector{client: client, admin: admin}, nil
}

// Close closes the connections (the admin closes its client).
func (i *Inspector) Close() error { return i.admin.Close() }

// TopicSize reports how many messages topic holds: the sum over its
// partitions of newest minus oldest offset.
func (i *Inspector) TopicSize(ctx context.Context, topic string) (int64, error) {
	return await(ctx, func() (int64, error) {
		parts, err := i.client.Partitions(topic)
		if err != nil {
			return 0, fmt.Errorf("size of %s: %w", topic, err)
		}
		var n int64
		for _, p := range parts {
			oldest, newest, err := i.bounds(topic, p)
			if err != nil {
				return 0, fmt.Errorf("size of %s: %w", topic, err)
			}
			n += newest - oldest
		}
		return n, nil
	})
}

// Backlog reports how many messages of topic consumer group group has not
// committed yet: per partition, newest offset minus the group's committed
// offset (or minus the oldest offset where the group has none: it starts
// at the oldest message).
func (i *Inspector) Backlog(ctx context.Context, topic, group string) (int64, error) {
	return await(ctx, func() (int64, error) {
		parts, err := i.client.Partitions(topic)
		if err != nil {
			return 0, fmt.Errorf("backlog of %s on %s: %w", group, topic, err)
		}
		committed, err := i.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
		if err == nil && !errors.Is(committed.Err, sarama.ErrNoError) {
			err = committed.Err
		}
		switch {
		case errors.Is(err, sarama.ErrGroupIDNotFound):
			committed = nil // a group that never committed starts at the oldest message
		case err != nil:
			return 0, fmt.Errorf("backlog of %s on %s: %w", group, topic, err)
		}
		var lag int64
		for _, p := range parts {
			oldest, newest, err := i.bounds(topic, p)
			if err != nil {
				return 0, fmt.Errorf("backlog of %s on %s: %w", group, topic, err)
			}
			from := oldest
			if b := committedBlock(committed, topic, p); b != nil && b.Offset >= 0 {
				from = max(b.Offset, oldest)
			}
			lag += max(newest-from, 0)
		}
		return lag, nil
	})
}

// committedBlock is the group's offset of a partition, nil when it has none.
func committedBlock(r *sarama.OffsetFetchResponse, topic string, partition int32) *sarama.OffsetFetchResponseBlock {
	if r == nil {
		return nil
	}
	return r.GetBlock(topic, partition)
}

// bounds returns the oldest and the next (newest) offset of a partition.
func (i *Inspector) bounds(topic string, partition int32) (oldest, newest int64, err error) {
	if oldest, err = i.client.GetOffset(topic, partition, sarama.OffsetOldest); err != nil {
		return 0, 0, err
	}
	if newest, err = i.client.GetOffset(topic, partition, sarama.OffsetNewest); err != nil {
		return 0, 0, err
	}
	return oldest, newest, nil
}

// await runs f, which cannot be cancelled, and returns when it does or when
// ctx ends, whichever is first.
func await(ctx context.Context, f func() (int64, error)) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := f()
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
