package main

import (
	"testing"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		backend string
		want    int
		wantOK  bool
	}{
		{"sqlite, GOGC unset: phonepipe's target", nil, app.BackendSQLite, embeddedGCPercent, true},
		{"sqlite, GOGC empty: as unset", map[string]string{"GOGC": ""}, app.BackendSQLite, embeddedGCPercent, true},
		{"sqlite, GOGC set: the runtime's choice stands", map[string]string{"GOGC": "50"}, app.BackendSQLite, 0, false},
		{"sqlite, GOGC=off: the runtime's choice stands", map[string]string{"GOGC": "off"}, app.BackendSQLite, 0, false},
		{"postgres: Go's default", nil, app.BackendPostgres, 0, false},
		{"kafka: Go's default", nil, app.BackendKafka, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := gcPercent(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, c.backend)
			if got != c.want || ok != c.wantOK {
				t.Fatalf("gcPercent = %d, %v; want %d, %v", got, ok, c.want, c.wantOK)
			}
		})
	}
}
