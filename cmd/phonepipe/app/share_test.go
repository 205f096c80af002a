package app_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// stageCount reads how many messages a stage handled from a process's
// /metrics.
func stageCount(t *testing.T, base, stage string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := fmt.Sprintf(`phonepipe_stage_duration_seconds_count{stage=%q} `, stage)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metric %q: %v", sc.Text(), err)
			}
			return n
		}
	}
	return 0
}

// TestTwoValidatorsShareAnImport runs the validate role in two processes
// of its own, next to one with the other roles, and checks on every backend
// that both validate jobs of the imports.
func TestTwoValidatorsShareAnImport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, cfg app.Config) {
		cfg.DataDir = t.TempDir() // shared: the embedded database lives there
		main := cfg
		main.Roles = []string{app.RoleAPI, app.RoleSplit, app.RoleProject, app.RoleAggregate, app.RoleNotify}
		main.JobSize = 25
		a := startApp(t, main)
		worker := cfg
		worker.Roles = []string{app.RoleValidate}
		v1, v2 := startApp(t, worker), startApp(t, worker)

		var csv strings.Builder
		csv.WriteString("number\n")
		for i := range 1000 {
			fmt.Fprintf(&csv, "+3630%07d\n", i)
		}
		// A process that joins a role takes its share from then on: on
		// Kafka once the group has rebalanced (seconds: an import can be
		// quicker than that), on SQL when it next wins the group's lock.
		// Import until both have had some.
		var n1, n2 int
		deadline := time.Now().Add(2 * time.Minute)
		for round := 1; time.Now().Before(deadline); round++ {
			id := mustAccept(t, a.URL(), []byte(csv.String()))
			waitCompleted(t, a.URL(), id, 2*time.Minute)
			n1, n2 = stageCount(t, v1.URL(), "validate"), stageCount(t, v2.URL(), "validate")
			t.Logf("after import %d: jobs validated %d and %d", round, n1, n2)
			if n1 > 0 && n2 > 0 {
				return
			}
		}
		t.Fatalf("one validator did all the work: %d and %d jobs", n1, n2)
	})
}
