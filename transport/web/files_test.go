package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEveryEmbeddedFileIsServed guards against files added to static/ that
// the handler would not serve (or would panic on).
func TestEveryEmbeddedFileIsServed(t *testing.T) {
	h := Handler()
	n := 0
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		url := strings.TrimPrefix(p, "static")
		if url == "/index.html" {
			url = "/"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", url, rec.Code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Errorf("only %d embedded files", n)
	}
}
