package app_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/domain/phone"

	_ "modernc.org/sqlite"
)

// TestRowPanicFailsOnlyThatRow: a row that makes the phone rule panic is
// PROCESSING_FAILED; the rest of its job is processed normally.
func TestRowPanicFailsOnlyThatRow(t *testing.T) {
	cfg := app.WithEnrich(app.Config{}, func(input, region string) phone.Result {
		if strings.Contains(input, "boom") {
			panic("library bug")
		}
		return phone.Enrich(input, region)
	})
	a := startApp(t, cfg)
	id := mustAccept(t, a.URL(), []byte("number\n+3612345678\nboom\n+36301234567\n"))
	sum := waitCompleted(t, a.URL(), id, time.Minute)
	if sum.Failed != 1 || sum.Valid != 2 {
		t.Fatalf("summary %+v, want 1 failed and 2 valid", sum)
	}
	if r := results(t, a.URL(), id)[1]; r.Reason != "PROCESSING_FAILED" || r.Input != "boom" {
		t.Fatalf("row 2: %+v", r)
	}
}

// TestPoisonedJobCompletesAsFailed: a job that can never be processed (one
// of its stored rows is gone) goes to the poison queue; its rows end
// PROCESSING_FAILED and the import still completes.
func TestPoisonedJobCompletesAsFailed(t *testing.T) {
	var rows strings.Builder
	rows.WriteString("number\n")
	for i := range 1200 {
		fmt.Fprintf(&rows, "+3630%07d\n", i)
	}
	dir := t.TempDir()
	api := startApp(t, app.Config{DataDir: dir, Roles: []string{app.RoleAPI}})
	id := mustAccept(t, api.URL(), []byte(rows.String()))

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "phonepipe.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM import_rows WHERE import_id = ? AND row_num = 700`, id); err != nil {
		t.Fatal(err)
	}

	startApp(t, app.Config{DataDir: dir, Roles: []string{app.RoleSplit, app.RoleValidate, app.RoleProject, app.RoleAggregate}})
	sum := waitCompleted(t, api.URL(), id, time.Minute)
	if sum.Failed != 500 || sum.Valid != 700 || sum.Processed != 1200 {
		t.Fatalf("summary %+v, want the 500 rows of the poisoned job failed", sum)
	}
	got := results(t, api.URL(), id)
	for _, r := range got[500:1000] {
		if r.Reason != "PROCESSING_FAILED" || r.Valid || (r.Input == "") != (r.Row == 700) {
			t.Fatalf("row %d of the poisoned job: %+v", r.Row, r)
		}
	}
	var poisoned int
	if err := db.QueryRow(`SELECT COUNT(*) FROM watermill_poison`).Scan(&poisoned); err != nil || poisoned != 1 {
		t.Fatalf("%d messages in the poison queue (%v), want 1", poisoned, err)
	}
}
