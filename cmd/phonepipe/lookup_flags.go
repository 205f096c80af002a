package main

import (
	"flag"
	"fmt"
	"net/http"
	"strings"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/lookup"
)

// defaultLookupRate is --lookup-rate's default: requests per second.
const defaultLookupRate = 10

// addLookupFlags adds the flags of the third-party lookup stage to fs.
func addLookupFlags(fs *flag.FlagSet, c *app.LookupConfig) {
	fs.StringVar(&c.URL, "lookup-url", "", "third-party lookup endpoint template containing {e164}; empty = lookup stage off")
	fs.Var(&headerList{h: &c.Headers}, "lookup-header",
		"header sent with every lookup request, `Name: value`; repeatable (environment: newline- or comma-separated list)")
	fs.DurationVar(&c.Timeout, "lookup-timeout", lookup.DefaultTimeout, "bound of each lookup request")
	fs.Float64Var(&c.Rate, "lookup-rate", defaultLookupRate, "most lookup requests per second, retries included; 0 = no limit")
	fs.IntVar(&c.Concurrency, "lookup-concurrency", lookup.DefaultConcurrency, "most lookup requests in flight per lookup process")
	fs.DurationVar(&c.Deadline, "lookup-deadline", lookup.DefaultDeadline,
		"how long an import may wait for lookups after its validation finished; then the rest are skipped")
	fs.DurationVar(&c.TTL, "lookup-ttl", projections.DefaultLookupTTL, "how long a successful lookup answers for its number")
}

// headerList is a repeatable flag of HTTP headers, each "Name: value".
// One value may hold several headers, separated by newlines, or by commas
// where what follows the comma starts with "Name:" (a comma inside a
// header's value stays in it, unless a "Name:" follows it).
type headerList struct {
	h *http.Header
}

// String implements flag.Value.
func (l *headerList) String() string {
	if l == nil || l.h == nil {
		return ""
	}
	var parts []string
	for name, values := range *l.h {
		for _, v := range values {
			parts = append(parts, name+": "+v)
		}
	}
	return strings.Join(parts, ", ")
}

// Set implements flag.Value: it adds the headers in v.
func (l *headerList) Set(v string) error {
	if *l.h == nil {
		*l.h = http.Header{}
	}
	for _, line := range splitHeaders(v) {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok {
			return fmt.Errorf("header %q is not Name: value", line)
		}
		if err := lookup.ValidateHeader(name, value); err != nil {
			return err
		}
		l.h.Add(name, value)
	}
	return nil
}

// splitHeaders splits a list of headers (see headerList).
func splitHeaders(v string) []string {
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
		first := len(out)
		for _, part := range strings.Split(line, ",") {
			if len(out) > first && !startsHeader(part) {
				out[len(out)-1] += "," + part // a comma inside a value
				continue
			}
			out = append(out, part)
		}
	}
	kept := out[:0]
	for _, h := range out {
		if h = strings.TrimSpace(h); h != "" {
			kept = append(kept, h)
		}
	}
	return kept
}

// startsHeader reports whether s begins with a header name and a colon.
func startsHeader(s string) bool {
	name, _, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	return ok && name != "" && lookup.ValidateHeader(name) == nil
}
