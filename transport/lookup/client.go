package lookup

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/domain"
)

// Client asks the provider about one number. It follows no redirects and
// reads bounded bodies; each request is bounded by its context (the
// worker's per-attempt timeout) and by the client's own timeout.
type Client struct {
	tmpl    string
	headers http.Header
	http    *http.Client
	maxBody int64
	maxRaw  int
	now     func() time.Time
}

// NewClient returns a client for cfg's provider.
func NewClient(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          cfg.Concurrency,
		MaxIdleConnsPerHost:   cfg.Concurrency,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Client{
		tmpl:    cfg.URL,
		headers: cfg.Headers.Clone(),
		http: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		maxBody: cfg.MaxBodyBytes,
		maxRaw:  cfg.MaxRawBytes,
		now:     cfg.Now,
	}, nil
}

// URL is the request URL for a number: the template with the number
// escaped (so "+" arrives as "+", in a path or a query).
func (c *Client) URL(e164 string) string {
	return strings.ReplaceAll(c.tmpl, Placeholder, url.QueryEscape(e164))
}

// Lookup makes one request for e164 and maps the answer. Errors tell
// whether another attempt may help (see retryable).
func (c *Client) Lookup(ctx context.Context, e164 string) (domain.Lookup, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(e164), nil)
	if err != nil {
		return domain.Lookup{}, &invalidResponseError{why: fmt.Sprintf("build request: %v", err)}
	}
	for name, values := range c.headers {
		req.Header[name] = append([]string(nil), values...)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return domain.Lookup{}, fmt.Errorf("lookup %s: %w", e164, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return domain.Lookup{}, fmt.Errorf("lookup %s: read response: %w", e164, err)
	}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		return domain.Lookup{}, &rateLimitedError{retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
	case code < 200 || code > 299:
		return domain.Lookup{}, &statusError{code: code}
	case int64(len(body)) > c.maxBody:
		return domain.Lookup{}, &invalidResponseError{why: fmt.Sprintf("body larger than %d bytes", c.maxBody)}
	}
	return mapResponse(body, c.maxRaw)
}

// CloseIdleConnections closes the client's idle connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
