package webhooks

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test vector of the Standard Webhooks reference libraries.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specPayload   = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	got, err := Sign(specSecret, specMsgID, time.Unix(specTimestamp, 0), []byte(specPayload))
	if err != nil {
		t.Fatal(err)
	}
	if got != specSignature {
		t.Fatalf("Sign = %q, want %q", got, specSignature)
	}
	// The prefix is optional.
	got, err = Sign(strings.TrimPrefix(specSecret, "whsec_"), specMsgID, time.Unix(specTimestamp, 0), []byte(specPayload))
	if err != nil || got != specSignature {
		t.Fatalf("Sign without prefix = %q, %v", got, err)
	}
}

func specHeader(sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, specMsgID)
	h.Set(HeaderTimestamp, strconv.Itoa(specTimestamp))
	h.Set(HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(specTimestamp, 0).Add(30 * time.Second)
	other, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		secret    string
		header    http.Header
		body      string
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{name: "valid", secret: specSecret, header: specHeader(specSignature), body: specPayload, now: now},
		{name: "several signatures, one valid", secret: specSecret,
			header: specHeader("v1,Ym9ndXM= v1a,whatever " + specSignature), body: specPayload, now: now},
		{name: "tampered body", secret: specSecret, header: specHeader(specSignature),
			body: `{"test": 2432232315}`, now: now, want: ErrInvalidSignature},
		{name: "wrong secret", secret: other, header: specHeader(specSignature), body: specPayload, now: now, want: ErrInvalidSignature},
		{name: "other version only", secret: specSecret,
			header: specHeader("v2," + strings.TrimPrefix(specSignature, "v1,")), body: specPayload, now: now, want: ErrInvalidSignature},
		{name: "garbage signature", secret: specSecret, header: specHeader("v1,!!!"), body: specPayload, now: now, want: ErrInvalidSignature},
		{name: "stale timestamp", secret: specSecret, header: specHeader(specSignature), body: specPayload,
			now: time.Unix(specTimestamp, 0).Add(6 * time.Minute), want: ErrTimestampOutOfTolerance},
		{name: "future timestamp", secret: specSecret, header: specHeader(specSignature), body: specPayload,
			now: time.Unix(specTimestamp, 0).Add(-6 * time.Minute), want: ErrTimestampOutOfTolerance},
		{name: "custom tolerance", secret: specSecret, header: specHeader(specSignature), body: specPayload,
			now: now, tolerance: 10 * time.Second, want: ErrTimestampOutOfTolerance},
		{name: "malformed timestamp", secret: specSecret, body: specPayload, now: now, want: ErrInvalidSignature,
			header: func() http.Header { h := specHeader(specSignature); h.Set(HeaderTimestamp, "yesterday"); return h }()},
	}
	for _, missing := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		h := specHeader(specSignature)
		h.Del(missing)
		tests = append(tests, struct {
			name      string
			secret    string
			header    http.Header
			body      string
			now       time.Time
			tolerance time.Duration
			want      error
		}{name: "missing " + missing, secret: specSecret, header: h, body: specPayload, now: now, want: ErrMissingHeaders})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, []byte(tt.body), tt.now, tt.tolerance)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyBadSecret(t *testing.T) {
	err := Verify("whsec_not base64!", specHeader(specSignature), []byte(specPayload), time.Unix(specTimestamp, 0), 0)
	if err == nil || errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("Verify with undecodable secret = %v, want a secret error", err)
	}
}

func TestNewSecretRoundTrip(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("secret %q lacks whsec_ prefix", a)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if err != nil || len(key) != 24 {
		t.Fatalf("secret key: %d bytes, %v", len(key), err)
	}
	ts := time.Now()
	body := []byte(`{"type":"x"}`)
	sig, err := Sign(a, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	if err := Verify(a, h, body, ts, 0); err != nil {
		t.Fatalf("Verify own signature: %v", err)
	}
	if err := Verify(b, h, body, ts, 0); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("Verify with other secret = %v", err)
	}
}
