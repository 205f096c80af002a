package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/phonepipe/phonepipe/transport/web"
)

// serve mounts the handler the way the API does.
func serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	h := web.Handler()
	mux.Handle(web.PagePattern, h)
	mux.Handle(web.AssetsPattern, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp, string(b)
}

func TestPageAndAssetsContentTypes(t *testing.T) {
	srv := serve(t)
	for path, want := range map[string]string{
		"/":                   "text/html; charset=utf-8",
		"/assets/app.css":     "text/css; charset=utf-8",
		"/assets/app.js":      "text/javascript; charset=utf-8",
		"/assets/favicon.svg": "image/svg+xml",
	} {
		resp, body := get(t, srv.URL+path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
		if body == "" {
			t.Errorf("GET %s: empty body", path)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", path)
			continue
		}
		again, _ := get(t, srv.URL+path, map[string]string{"If-None-Match": etag})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d, want 304", path, again.StatusCode)
		}
	}
	resp, _ := get(t, srv.URL+"/", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("page CSP = %q", csp)
	}
}

func TestUnknownPathsAreNotFound(t *testing.T) {
	srv := serve(t)
	for _, path := range []string{"/assets/", "/assets/nope.js", "/index.html", "/assets/../static/index.html", "/other"} {
		resp, _ := get(t, srv.URL+path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	// Directly, without a mux in front, other methods are refused.
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", rec.Code)
	}
	rec = httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/assets/app.js", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /assets/app.js: %d with %d body bytes", rec.Code, rec.Body.Len())
	}
}

var (
	attrRef = regexp.MustCompile(`(?i)\s(?:src|href)\s*=\s*"([^"]*)"`)
	cssURL  = regexp.MustCompile(`(?i)url\(|@import`)
	remote  = regexp.MustCompile(`(?i)(https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
)

// TestPageReferencesOnlyEmbeddedAssets checks that the page loads nothing
// from another origin: every src/href is an embedded asset served here, the
// stylesheet imports nothing, and the script names no remote host.
func TestPageReferencesOnlyEmbeddedAssets(t *testing.T) {
	srv := serve(t)
	_, page := get(t, srv.URL+"/", nil)
	refs := attrRef.FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("page references %d resources; want the stylesheet, script and icon", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if ref == "#" { // download links, filled in by the script
			continue
		}
		if !strings.HasPrefix(ref, "/assets/") {
			t.Errorf("page references %q, not an embedded asset", ref)
			continue
		}
		if resp, _ := get(t, srv.URL+ref, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("page references %q, which answers %d", ref, resp.StatusCode)
		}
	}
	_, css := get(t, srv.URL+"/assets/app.css", nil)
	if cssURL.MatchString(css) {
		t.Errorf("stylesheet loads other resources")
	}
	_, js := get(t, srv.URL+"/assets/app.js", nil)
	for name, text := range map[string]string{"page": page, "stylesheet": css, "script": js} {
		if m := remote.FindString(text); m != "" {
			t.Errorf("%s names a remote host: %q", name, m)
		}
	}
}

// TestPageHasTestableElements checks the stable ids (and their labels) that
// browser tests and users' scripts rely on.
func TestPageHasTestableElements(t *testing.T) {
	srv := serve(t)
	_, page := get(t, srv.URL+"/", nil)
	for _, want := range []string{
		`id="file"`, `id="region"`, `id="submit"`, `<progress id="progress"`, `id="percent"`, `id="status"`,
		`id="summary"`, `data-count="total"`, `data-count="valid"`, `data-count="invalid"`,
		`data-count="duplicates"`, `data-count="failed"`, `id="download-csv"`, `id="download-ndjson"`,
		`id="error"`, `id="import-id"`, `id="api-key"`,
		`<label for="file"`, `<label for="region"`, `<label for="api-key"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}
