package kafkapubsub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// defaultPingTimeout bounds Ping when ctx has no deadline.
const defaultPingTimeout = 2 * time.Second

// Ping reports whether a broker answers: it sends an ApiVersions request
// to each bootstrap broker in turn and returns nil at the first answer. It
// gives up when ctx ends (or after 2 s without a deadline).
func (p *PubSub) Ping(ctx context.Context) error {
	timeout := defaultPingTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return fmt.Errorf("ping kafka: %w", context.DeadlineExceeded)
	}
	conf := p.cfg.saramaConfig()
	conf.Net.DialTimeout, conf.Net.ReadTimeout, conf.Net.WriteTimeout = timeout, timeout, timeout
	done := make(chan error, 1)
	go func() { done <- pingBrokers(p.cfg.Brokers, conf) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("ping kafka: %w", ctx.Err())
	}
}

// pingBrokers asks each broker for its API versions until one answers.
func pingBrokers(addrs []string, conf *sarama.Config) error {
	var errs []error
	for _, addr := range addrs {
		b := sarama.NewBroker(addr)
		if err := b.Open(conf); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		_, err := b.ApiVersions(&sarama.ApiVersionsRequest{})
		_ = b.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("ping kafka: no broker answers: %w", errors.Join(errs...))
}
