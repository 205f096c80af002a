package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// TestWorkerProcessServesOpsEndpoints: a process without the api role still
// answers /healthz, /readyz and /metrics on its address, and nothing else.
func TestWorkerProcessServesOpsEndpoints(t *testing.T) {
	a := startApp(t, app.Config{Roles: []string{app.RoleValidate, app.RoleProject}})
	if code := getJSON(t, a.URL()+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for getJSON(t, a.URL()+"/readyz", nil) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(a.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	if code := getJSON(t, a.URL()+"/v1/imports/x", nil); code != http.StatusNotFound {
		t.Fatalf("a worker serves the API: %d", code)
	}
}
