// Package webhooks delivers outbound webhooks following the Standard Webhooks
// specification (https://www.standardwebhooks.com, the Svix scheme).
//
// It has three parts:
//
//   - Signing and verification (Sign, Verify, NewSecret): HMAC-SHA256 over
//     "msgID.timestamp.body" with a "whsec_"-prefixed base64 secret, sent in the
//     webhook-id, webhook-timestamp and webhook-signature headers.
//   - A durable outbox in SQL (Store): subscriptions per tenant, per-tenant
//     signing secrets, and deliveries with their attempts. Store.Enqueue runs in
//     the caller's transaction so an event is recorded exactly once together with
//     the state change that caused it; enqueueing the same event id again is a
//     no-op.
//   - A Dispatcher whose Run loop claims due deliveries with a lease (so several
//     processes can share one database), POSTs them with retries on a schedule,
//     honours 410 Gone and 429 Retry-After, never follows redirects and, unless
//     told otherwise, refuses to connect to private, loopback, link-local and
//     metadata addresses (see NewHTTPClient).
//
// Webhooks are never sent from the code that enqueues them: the outbox rows are
// the only hand-off, so pending deliveries survive restarts.
package webhooks
