package webhooks

import (
	"net/http"
	"testing"
	"time"
)

func TestJitter(t *testing.T) {
	if jitter(0) != 0 {
		t.Fatal("jitter(0) != 0")
	}
	for range 1000 {
		if j := jitter(time.Second); j < 900*time.Millisecond || j > 1100*time.Millisecond {
			t.Fatalf("jitter(1s) = %s, outside ±10%%", j)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999999", maxRetryAfter},
		{now.Add(1000 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestNewDispatcherConfig(t *testing.T) {
	s, _ := newTestStore(t)
	d, err := NewDispatcher(s, DispatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := d.cfg
	if len(c.Schedule) != 8 || c.Schedule[1] != 5*time.Second || c.Schedule[7] != 10*time.Hour ||
		c.Timeout != 15*time.Second || c.PollInterval != time.Second || c.DisableAfter != 5*24*time.Hour ||
		c.Concurrency != 8 || c.Now == nil || c.Logger == nil || c.AllowPrivate {
		t.Fatalf("defaults not applied: %+v", c)
	}
	for _, bad := range []DispatcherConfig{
		{Schedule: []time.Duration{0, -time.Second}},
		{Timeout: -1},
		{Concurrency: -1},
	} {
		if _, err := NewDispatcher(s, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
	if _, err := NewDispatcher(nil, DispatcherConfig{}); err == nil {
		t.Error("nil store accepted")
	}
}
