package live

import (
	"log/slog"
	"time"
)

// Defaults applied by NewHub to zero (or negative) Config fields.
const (
	DefaultCoalesceInterval = 250 * time.Millisecond
	DefaultClientQueue      = 32
	DefaultPingInterval     = 20 * time.Second
	DefaultPongWait         = 30 * time.Second
	DefaultWriteWait        = 10 * time.Second
	DefaultReadLimit        = 4096
)

// Config configures a Hub. The zero value is usable: every zero field gets
// its documented default.
type Config struct {
	// CoalesceInterval is the period of the flush loop: per import, at most
	// one progress message (the latest state) is sent per interval.
	// Completion is never delayed. Default 250ms.
	CoalesceInterval time.Duration
	// ClientQueue bounds each client's send queue. A client whose queue is
	// full is disconnected (close 1013 "slow consumer") instead of blocking
	// Publish or other clients. If the client's socket is full too, the close
	// frame cannot be sent and the connection is dropped when the pending
	// write times out (WriteWait). Default 32.
	ClientQueue int
	// PingInterval is how often the server pings each client. Default 20s.
	// It is lowered to 9/10 of PongWait if not below PongWait.
	PingInterval time.Duration
	// PongWait is how long the server waits for any frame (normally a pong)
	// from a client before dropping it. Default 30s.
	PongWait time.Duration
	// WriteWait bounds every write to a client, and the closing handshake.
	// Default 10s.
	WriteWait time.Duration
	// ReadLimit is the largest client message accepted; bigger ones close the
	// connection with 1009 (message too big). Default 4096 bytes.
	ReadLimit int64
	// AllowedOrigins lists the cross-origin pages allowed to connect, as exact
	// origins ("https://app.example.com"), or "*" for any. Same-origin
	// requests (Origin host equal to the request Host) and requests without
	// an Origin header (non-browser clients) are always allowed.
	AllowedOrigins []string
	// Logger receives diagnostics. Default: discard.
	Logger *slog.Logger
	// OnClientsChanged, if set, is called with the new number of connected
	// clients whenever it changes (e.g. to set a gauge). Calls are serialized
	// and made while the hub's lock is held, so the hook must be fast and
	// must not call Hub methods other than Clients.
	OnClientsChanged func(n int)
}

// withDefaults returns a copy of c with defaults filled in.
func (c Config) withDefaults() Config {
	if c.CoalesceInterval <= 0 {
		c.CoalesceInterval = DefaultCoalesceInterval
	}
	if c.ClientQueue <= 0 {
		c.ClientQueue = DefaultClientQueue
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongWait <= 0 {
		c.PongWait = DefaultPongWait
	}
	if c.PingInterval >= c.PongWait {
		c.PingInterval = c.PongWait * 9 / 10
	}
	if c.WriteWait <= 0 {
		c.WriteWait = DefaultWriteWait
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.AllowedOrigins = append([]string(nil), c.AllowedOrigins...)
	return c
}
