package domain

import "errors"

// ErrPermanent marks an error that retrying cannot fix (corrupt payload,
// broken invariant). Wrap it with %w; the retry middleware does not retry it.
var ErrPermanent = errors.New("permanent failure")

// ErrNotFound is returned when an entity does not exist for the asking tenant.
var ErrNotFound = errors.New("not found")

// ErrInvariant is returned when applying a change would break an import rule.
var ErrInvariant = errors.New("import invariant violated")
