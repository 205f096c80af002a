package app

// WithoutStats returns cfg with the carrier statistics handler left out,
// for tests of its catch-up from history.
func WithoutStats(cfg Config) Config {
	cfg.withoutStats = true
	return cfg
}
