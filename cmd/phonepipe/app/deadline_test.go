package app_test

import (
	"database/sql"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"

	_ "modernc.org/sqlite"
)

// deadlineRow is a result row with the detail of failed rows.
type deadlineRow struct {
	resultRow
	Detail string `json:"detail"`
}

// numberRows is an upload of n distinct valid Hungarian mobile numbers.
func numberRows(n int) []byte {
	var b strings.Builder
	b.WriteString("number\n")
	for i := range n {
		fmt.Fprintf(&b, "+3630%07d\n", i)
	}
	return []byte(b.String())
}

// withRoles is cfg running roles, with the import deadline d.
func withRoles(cfg app.Config, d time.Duration, roles ...string) app.Config {
	cfg.Roles = roles
	cfg.ImportDeadline = d
	cfg.WebhookAllowPrivate = true
	return cfg
}

// checkFailedByDeadline checks that rows first..last of an import's results
// are PROCESSING_FAILED by the deadline d, with their input kept.
func checkFailedByDeadline(t *testing.T, got []deadlineRow, first, last int, d time.Duration) {
	t.Helper()
	want := "import deadline exceeded after " + d.String()
	for _, r := range got[first-1 : last] {
		if r.Reason != "PROCESSING_FAILED" || r.Valid || r.Detail != want || r.Input != fmt.Sprintf("+3630%07d", r.Row-1) {
			t.Fatalf("row %d: %+v, want PROCESSING_FAILED (%q) with its input", r.Row, r, want)
		}
	}
}

// waitLag waits until consumer has handled every message of its topic,
// or a few seconds on backends that cannot tell (Kafka).
func waitLag(t *testing.T, base, consumer string) {
	t.Helper()
	sample := `phonepipe_consumer_lag_messages{consumer="` + consumer + `"}`
	if !strings.Contains(scrape(t, base), sample+" ") {
		time.Sleep(5 * time.Second)
		return
	}
	waitFor(t, time.Minute, consumer+" to catch up", func() bool { return metricValue(t, scrape(t, base), sample) == 0 })
}

// TestImportDeadlineFailsWhatNeverRan: an import whose split never runs,
// and one whose jobs are never validated, both complete at the deadline
// with every row PROCESSING_FAILED ("import deadline exceeded after 2s"),
// exactly once, with their webhook; two aggregate processes keep the
// deadline at once without failing a row twice. A splitter and a validator
// started afterwards find the work claimed and change nothing: the first
// recorded result wins.
func TestImportDeadlineFailsWhatNeverRan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, base app.Config) {
		const deadline = 2 * time.Second
		base.DataDir = t.TempDir()
		hooks := &hookCounter{}
		hookSrv := httptest.NewServer(hooks)
		defer hookSrv.Close()
		query := "?webhook_url=" + url.QueryEscape(hookSrv.URL)

		api := startApp(t, withRoles(base, deadline, app.RoleAPI, app.RoleProject, app.RoleAggregate, app.RoleNotify))
		agg := startApp(t, withRoles(base, deadline, app.RoleAggregate))

		// No splitter: the import stays accepted until its deadline.
		unsplit := acceptImport(t, api.URL(), query, numberRows(1200))
		start := time.Now()
		sum := waitCompleted(t, api.URL(), unsplit, time.Minute)
		if took := time.Since(start); took < deadline-100*time.Millisecond {
			t.Errorf("completed after %s, before the deadline", took)
		}
		if sum.Total != 1200 || sum.Processed != 1200 || sum.Failed != 1200 || sum.Valid != 0 {
			t.Fatalf("unsplit import %+v, want all 1200 rows failed", sum)
		}

		// A splitter but no validator: the jobs wait until the deadline.
		startApp(t, withRoles(base, deadline, app.RoleSplit))
		unvalidated := acceptImport(t, api.URL(), query, numberRows(1200))
		sum2 := waitCompleted(t, api.URL(), unvalidated, time.Minute)
		if sum2.Processed != 1200 || sum2.Failed != 1200 {
			t.Fatalf("unvalidated import %+v, want all 1200 rows failed", sum2)
		}

		// The validator comes late: its jobs were claimed by the watchdog.
		startApp(t, withRoles(base, 0, app.RoleValidate))
		waitLag(t, api.URL(), "split")
		waitLag(t, api.URL(), "validate")
		waitLag(t, api.URL(), "project")
		waitLag(t, api.URL(), "aggregate")
		for _, id := range []string{unsplit, unvalidated} {
			waitFor(t, time.Minute, "the webhook of "+id, func() bool { return hooks.count("import.completed "+id) > 0 })
		}
		time.Sleep(2 * deadline) // a few more sweeps and webhook rounds

		for id, before := range map[string]importSummary{unsplit: sum, unvalidated: sum2} {
			var after importSummary
			getJSON(t, api.URL()+"/v1/imports/"+id, &after)
			if after.Processed != before.Processed || after.Failed != before.Failed || after.Status != "completed" ||
				!after.CompletedAt.Equal(*before.CompletedAt) {
				t.Errorf("import %s changed after completing: %+v, was %+v", id, after, before)
			}
			got := resultRows[deadlineRow](t, api.URL(), id)
			if len(got) != 1200 {
				t.Fatalf("import %s has %d results, want 1200", id, len(got))
			}
			checkFailedByDeadline(t, got, 1, 1200, deadline)
			if n := hooks.count("import.completed " + id); n != 1 {
				t.Errorf("import %s: %d import.completed webhooks, want 1", id, n)
			}
		}
		failed := metricValue(t, scrape(t, api.URL()), "phonepipe_import_deadline_rows_failed_total") +
			metricValue(t, scrape(t, agg.URL()), "phonepipe_import_deadline_rows_failed_total")
		if failed != 2400 {
			t.Errorf("the two watchdogs failed %v rows together, want 2400", failed)
		}
	})
}

// TestImportDeadlineKeepsFinishedJobs: of an import whose last two
// validation jobs were lost, the first job is validated as usual; at the
// deadline the lost jobs' 700 rows are failed and the import completes
// exactly once, the first 500 rows keeping their real results.
func TestImportDeadlineKeepsFinishedJobs(t *testing.T) {
	const deadline = 2 * time.Second
	dir := t.TempDir()
	base := app.Config{DataDir: dir}
	hooks := &hookCounter{}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	api := startApp(t, withRoles(base, 0, app.RoleAPI, app.RoleSplit))
	id := acceptImport(t, api.URL(), "?webhook_url="+url.QueryEscape(hookSrv.URL), numberRows(1200))
	waitFor(t, time.Minute, "the split", func() bool {
		var s importSummary
		getJSON(t, api.URL()+"/v1/imports/"+id, &s)
		return s.Status == "processing"
	})

	// Lose jobs 2 and 3 before any validator sees them.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "phonepipe.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`DELETE FROM watermill_job_validate_v1 WHERE CAST(payload AS TEXT) LIKE ? OR CAST(payload AS TEXT) LIKE ?`,
		`%"job":2,%`, `%"job":3,%`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("deleted %d job messages, want 2", n)
	}

	// The pipeline without a deadline counts job 1, then a second
	// aggregate process with a deadline joins.
	startApp(t, withRoles(base, 0, app.RoleValidate, app.RoleProject, app.RoleAggregate, app.RoleNotify))
	waitFor(t, time.Minute, "job 1", func() bool {
		var s importSummary
		getJSON(t, api.URL()+"/v1/imports/"+id, &s)
		return s.Processed == 500
	})
	watchdog := startApp(t, withRoles(base, deadline, app.RoleAggregate))
	sum := waitCompleted(t, api.URL(), id, time.Minute)
	if sum.Processed != 1200 || sum.Valid != 500 || sum.Failed != 700 || sum.Invalid != 0 {
		t.Fatalf("summary %+v, want 500 valid and 700 failed", sum)
	}
	got := resultRows[deadlineRow](t, api.URL(), id)
	if len(got) != 1200 {
		t.Fatalf("%d results, want 1200", len(got))
	}
	for _, r := range got[:500] {
		if !r.Valid || r.Reason != "" || r.Detail != "" || r.E164 != fmt.Sprintf("+3630%07d", r.Row-1) {
			t.Fatalf("row %d of the validated job: %+v", r.Row, r)
		}
	}
	checkFailedByDeadline(t, got, 501, 1200, deadline)
	if !slices.IsSortedFunc(got, func(a, b deadlineRow) int { return a.Row - b.Row }) || got[1199].Row != 1200 {
		t.Fatal("results are not rows 1..1200 in order")
	}

	waitFor(t, time.Minute, "the webhook", func() bool { return hooks.count("import.completed "+id) > 0 })
	time.Sleep(2 * deadline)
	if n := hooks.count("import.completed " + id); n != 1 {
		t.Errorf("%d import.completed webhooks, want 1", n)
	}
	var completed int
	if err := db.QueryRow(`SELECT COUNT(*) FROM watermill_import_completed_v1 WHERE CAST(payload AS TEXT) LIKE ?`,
		"%"+id+"%").Scan(&completed); err != nil || completed != 1 {
		t.Errorf("%d import.completed events (%v), want 1", completed, err)
	}
	if n := metricValue(t, scrape(t, watchdog.URL()), "phonepipe_import_deadline_rows_failed_total"); n != 700 {
		t.Errorf("watchdog metric %v, want 700", n)
	}
}
