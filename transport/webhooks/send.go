package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

const (
	// snippetBytes is how much of a response body an Attempt keeps.
	snippetBytes = 512
	// drainBytes is how much more of a response body is read so the connection
	// can be reused.
	drainBytes = 64 << 10
	// userAgent identifies the sender.
	userAgent = "phonepipe-webhooks/1"
)

// sendResult is what happened to one HTTP request.
type sendResult struct {
	at         time.Time // when the attempt started, also its webhook-timestamp
	end        time.Time
	statusCode int
	err        error // transport error, or nil when a response arrived
	permanent  bool  // err can never go away by retrying (bad URL or secret)
	snippet    string
	retryAfter time.Duration
}

// send POSTs a claimed delivery once, signed for this attempt's timestamp.
func (d *Dispatcher) send(ctx context.Context, c claim) (res sendResult) {
	res.at = d.cfg.Now()
	defer func() { res.end = d.cfg.Now() }()
	if err := validateURL(c.url); err != nil {
		res.err, res.permanent = err, true
		return res
	}
	sig, err := Sign(c.secret, c.webhookID, res.at, c.body)
	if err != nil {
		res.err, res.permanent = err, true
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(c.body))
	if err != nil {
		res.err, res.permanent = fmt.Errorf("webhooks: building request: %w", err), true
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, c.webhookID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(res.at.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	if c.correlationID != "" {
		req.Header.Set("X-Correlation-Id", c.correlationID)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	res.statusCode = resp.StatusCode
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetBytes))
	res.snippet = string(snippet)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	if resp.StatusCode == http.StatusTooManyRequests {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), d.cfg.Now())
	}
	return res
}
