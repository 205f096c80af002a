package eventlog_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// trimsTheLog matches source lines that would delete from, empty or drop
// an event-log table, or delete Kafka topics or records.
var trimsTheLog = regexp.MustCompile(`(?i)((delete\s+from|truncate|drop\s+table)[^\n]*(watermill|messagestable|offsetstable))` +
	`|\bDeleteTopic\(|\bDeleteRecords\(`)

// TestEventLogIsNeverTrimmed enforces the retention rule of docs/REPLAY.md:
// the event log is the source of truth, so no code of phonepipe deletes
// from the SQL topic tables (watermill_<topic>, their offsets) or deletes
// Kafka topics or records; and the Kafka topics phonepipe creates keep
// their records forever (retention.ms=-1).
func TestEventLogIsNeverTrimmed(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	retention := false
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "testdata" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if trimsTheLog.MatchString(line) {
				t.Errorf("%s:%d trims the event log: %s", path, n, strings.TrimSpace(line))
			}
			if strings.Contains(line, `"retention.ms"`) {
				retention = true
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !retention {
		t.Error(`no Kafka topic configuration sets "retention.ms" (it must be -1)`)
	}
}

func TestTrimPatternCatchesTrimming(t *testing.T) {
	for _, line := range []string{
		`db.ExecContext(ctx, "DELETE FROM " + sqlitepubsub.MessagesTable(topic))`,
		"q := `TRUNCATE watermill_numbers_recorded_v1`",
		`admin.DeleteTopic("numbers_recorded_v1")`,
		`_, err := tx.Exec("DROP TABLE \"watermill_offsets_poison\"")`,
	} {
		if !trimsTheLog.MatchString(line) {
			t.Errorf("not caught: %s", line)
		}
	}
	for _, line := range []string{`DELETE FROM number_events_parked WHERE stream_id = ?`, `DELETE FROM webhook_deliveries`} {
		if trimsTheLog.MatchString(line) {
			t.Errorf("caught wrongly: %s", line)
		}
	}
}
