package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// static holds the page (static/index.html) and its assets (static/assets/).
//
//go:embed static
var static embed.FS

// The ServeMux patterns [Handler] is meant to be mounted on: the page at the
// exact root (so that unknown paths stay the API's 404s) and its assets.
const (
	PagePattern   = "GET /{$}"
	AssetsPattern = "GET /assets/"
)

// contentSecurityPolicy allows only same-origin scripts, styles, images and
// connections (fetch and WebSocket), and forbids framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// contentType maps the extensions used by the embedded files to their media
// types, so that answers do not depend on the host's MIME tables.
func contentType(name string) (string, bool) {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8", true
	case ".css":
		return "text/css; charset=utf-8", true
	case ".js":
		return "text/javascript; charset=utf-8", true
	case ".svg":
		return "image/svg+xml", true
	}
	return "", false
}

// file is one embedded file, ready to serve.
type file struct {
	data        []byte
	contentType string
	etag        string
}

// handler serves the embedded files by URL path.
type handler struct {
	files map[string]file
}

// Handler returns the handler for the browser page: "/" answers the HTML page
// and "/assets/NAME" its stylesheet, script and icon. Every other path is 404,
// and so are directory paths (there are no listings). GET and HEAD are
// answered; other methods get 405. Answers carry an ETag (conditional requests
// get 304), Cache-Control: no-cache, X-Content-Type-Options: nosniff and, on
// the page, a Content-Security-Policy that allows same-origin resources only.
func Handler() http.Handler {
	h := &handler{files: map[string]file{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := static.ReadFile(p)
		if err != nil {
			return fmt.Errorf("web: read embedded %s: %w", p, err)
		}
		ct, ok := contentType(p)
		if !ok {
			return fmt.Errorf("web: embedded %s has no known content type", p)
		}
		sum := sha256.Sum256(data)
		urlPath := strings.TrimPrefix(p, "static")
		if urlPath == "/index.html" {
			urlPath = "/"
		}
		h.files[urlPath] = file{data: data, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in; failing here is a build defect that the
		// package's tests catch.
		panic(err)
	}
	return h
}

// ServeHTTP implements [http.Handler].
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/" {
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}
