package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const (
	secretPrefix     = "whsec_"
	secretBytes      = 24
	signatureVersion = "v1"
	// DefaultTolerance is the spec's recommended maximum clock difference between
	// the webhook-timestamp header and the verifier; Verify uses it when given a
	// tolerance <= 0.
	DefaultTolerance = 5 * time.Minute
)

// NewSecret returns a new random signing secret: "whsec_" followed by the
// standard base64 encoding of 24 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhooks: generating secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// secretKey decodes the HMAC key of a secret. The "whsec_" prefix is optional.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhooks: decoding secret: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("webhooks: empty secret")
	}
	return key, nil
}

// ValidateSecret reports whether secret is a usable signing secret.
func ValidateSecret(secret string) error {
	_, err := secretKey(secret)
	return err
}

func sign(key []byte, msgID string, unix int64, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(unix, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Sign returns the webhook-signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, msgID + "." + unixSeconds(ts) + "." + body)),
// where key is the base64 decoding of secret after its "whsec_" prefix.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return signatureVersion + "," + base64.StdEncoding.EncodeToString(sign(key, msgID, ts.Unix(), body)), nil
}

// Verify checks a received webhook: the webhook-id, webhook-timestamp and
// webhook-signature headers must be present (ErrMissingHeaders), the timestamp
// must be within tolerance of now in either direction
// (ErrTimestampOutOfTolerance; tolerance <= 0 means DefaultTolerance), and at
// least one of the space-separated "v1,<base64>" signatures must match
// (ErrInvalidSignature). Signatures of other versions are ignored. A secret that
// cannot be decoded is reported as a non-sentinel error.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	msgID, tsHeader, sigHeader := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if msgID == "" || tsHeader == "" || sigHeader == "" {
		return ErrMissingHeaders
	}
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	unix, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed %s %q", ErrInvalidSignature, HeaderTimestamp, tsHeader)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if diff := now.Sub(time.Unix(unix, 0)); diff > tolerance || diff < -tolerance {
		return fmt.Errorf("%w: timestamp %d is %s away from now", ErrTimestampOutOfTolerance, unix, diff.Round(time.Second))
	}
	expected := sign(key, msgID, unix, body)
	for _, candidate := range strings.Fields(sigHeader) {
		version, encoded, ok := strings.Cut(candidate, ",")
		if !ok || version != signatureVersion {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			continue
		}
		if hmac.Equal(got, expected) {
			return nil
		}
	}
	return ErrInvalidSignature
}
