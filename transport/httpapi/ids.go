package httpapi

import (
	"strings"

	"github.com/ThreeDotsLabs/watermill"
)

// newID returns a sortable unique id with a type prefix ("imp_01j…").
func newID(prefix string) string {
	return prefix + "_" + strings.ToLower(watermill.NewULID())
}
