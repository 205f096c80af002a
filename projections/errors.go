package projections

import "strings"

// isUniqueViolation recognises a unique-constraint failure across the
// drivers phonepipe uses, without importing each driver's error type.
func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || // sqlite
		strings.Contains(msg, "SQLSTATE 23505") || // postgres (pgx)
		strings.Contains(msg, "Error 1062") // mysql
}
