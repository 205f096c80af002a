package app_test

import (
	"os"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

func TestZZProfile(t *testing.T) {
	if os.Getenv("PP_PROF") == "" {
		t.Skip()
	}
	a := startApp(t, app.Config{})
	body, _ := os.ReadFile("/tmp/200k.csv")
	start := time.Now()
	id := mustAccept(t, a.URL(), body)
	waitCompleted(t, a.URL(), id, 10*time.Minute)
	t.Logf("200k in %s", time.Since(start))
}
