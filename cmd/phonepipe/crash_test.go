package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

type summary struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Total     int    `json:"total"`
	Processed int    `json:"processed"`
}

func getSummary(t *testing.T, base, id string) summary {
	t.Helper()
	resp, err := http.Get(base + "/v1/imports/" + id)
	if err != nil {
		t.Fatalf("GET import: %v", err)
	}
	defer resp.Body.Close()
	var s summary
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("decode import: %v", err)
	}
	return s
}

func upload(t *testing.T, base string, body []byte) string {
	t.Helper()
	resp, err := http.Post(base+"/v1/imports", "text/csv", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	var acc struct{ ID string }
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil {
		t.Fatal(err)
	}
	return acc.ID
}

// numbersCSV is n rows of numbers from a few countries with repeats.
func numbersCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("number,region\n")
	for i := range n {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "+3630%07d,\n", i%40_000)
		case 1:
			fmt.Fprintf(&b, "0151%08d,DE\n", i)
		case 2:
			fmt.Fprintf(&b, "(650) 2%02d-%04d,US\n", i%100, i%10_000)
		default:
			fmt.Fprintf(&b, "junk %d,\n", i)
		}
	}
	return b.Bytes()
}

// TestCrashMidImport kills the service with SIGKILL in the middle of a
// 50,000-row import, restarts it on the same data and checks that the import
// completes with every effect exactly once.
func TestCrashMidImport(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const total = 50_000
	first := bin.start(t, dir)
	id := upload(t, first.url, numbersCSV(total))

	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := getSummary(t, first.url, id)
		if s.Processed > 0 && s.Processed < total {
			t.Logf("killing at %d of %d rows", s.Processed, total)
			break
		}
		if s.Status == "completed" {
			t.Fatal("import completed before the kill; make it larger")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.kill()

	second := bin.start(t, dir)
	waitUntilCompleted(t, second.url, id, total, 5*time.Minute)
	second.stop(t)
	checkExactlyOnce(t, openData(t, dir), id, total)
}

// waitUntilCompleted polls an import until it completes with every row
// processed, failing the test after timeout.
func waitUntilCompleted(t *testing.T, base, id string, total int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := getSummary(t, base, id)
		if s.Status == "completed" {
			if s.Processed != total {
				t.Fatalf("completed with %d of %d processed", s.Processed, total)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not completed after %s: %+v", timeout, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
