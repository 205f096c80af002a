package main

import "testing"

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    map[string]string
		want   int
		wantOK bool
	}{
		{"GOGC unset: phonepipe's default", nil, defaultGCPercent, true},
		{"GOGC empty: as unset", map[string]string{"GOGC": ""}, defaultGCPercent, true},
		{"GOGC set: the runtime's choice stands", map[string]string{"GOGC": "50"}, 0, false},
		{"GOGC=off: the runtime's choice stands", map[string]string{"GOGC": "off"}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := gcPercent(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
			if got != c.want || ok != c.wantOK {
				t.Fatalf("gcPercent = %d, %v; want %d, %v", got, ok, c.want, c.wantOK)
			}
		})
	}
}
