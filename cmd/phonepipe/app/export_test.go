package app

import "github.com/phonepipe/phonepipe/domain/phone"

// WithEnrich returns cfg with the phone rule replaced, for failure tests.
func WithEnrich(cfg Config, enrich func(input, region string) phone.Result) Config {
	cfg.enrich = enrich
	return cfg
}

// WithoutPrefetch returns cfg with the validator's prefetch off.
func WithoutPrefetch(cfg Config) Config {
	cfg.noPrefetch = true
	return cfg
}
