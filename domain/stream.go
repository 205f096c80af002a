package domain

import (
	"fmt"
	"strings"
)

// DefaultTenant is the tenant every request belongs to when authentication is off.
const DefaultTenant = "default"

// StreamID is the identity of one per-number event stream.
type StreamID string

// NumberStream returns the stream of a parsed number: tenant + E.164.
func NumberStream(tenant, e164 string) StreamID {
	return StreamID(tenant + "/" + e164)
}

// RowStream returns the single-event stream of a row whose input did not
// parse into a number (see the package documentation).
func RowStream(tenant, importID string, row int) StreamID {
	return StreamID(fmt.Sprintf("%s/row/%s/%d", tenant, importID, row))
}

// IsNumberStream reports whether s is a per-number stream (not a row stream).
func (s StreamID) IsNumberStream() bool {
	_, rest, ok := strings.Cut(string(s), "/")
	return ok && strings.HasPrefix(rest, "+")
}
