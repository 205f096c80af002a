package webhooks

// sentinelError is a constant error type, so the package's sentinels are
// constants rather than mutable package-level variables. Two sentinels are equal
// when their messages are, which is what errors.Is compares.
type sentinelError string

func (e sentinelError) Error() string { return string(e) }

const (
	// ErrInvalidSignature means no signature in the webhook-signature header
	// matches the body, id and timestamp, or the signature headers are malformed.
	ErrInvalidSignature = sentinelError("webhooks: invalid signature")
	// ErrTimestampOutOfTolerance means the webhook-timestamp header is too far from
	// the verifier's clock (in either direction).
	ErrTimestampOutOfTolerance = sentinelError("webhooks: timestamp outside tolerance")
	// ErrMissingHeaders means webhook-id, webhook-timestamp or webhook-signature is
	// absent.
	ErrMissingHeaders = sentinelError("webhooks: missing webhook headers")
	// ErrNotFound means the subscription or delivery does not exist or belongs to
	// another tenant.
	ErrNotFound = sentinelError("webhooks: not found")
	// ErrBlockedAddress means the SSRF guard refused to connect to an address
	// (loopback, private, link-local, metadata, ...).
	ErrBlockedAddress = sentinelError("webhooks: destination address is blocked")
)
