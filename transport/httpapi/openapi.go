package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the OpenAPI document
	"encoding/hex"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
)

// openAPIDocument is the OpenAPI 3.1 description of the HTTP API, served at
// GET /openapi.yaml. Keep it in step with the handlers: openapi_test.go and
// the app's end-to-end test check it against the routes and real answers.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// openAPIETag is the strong entity tag of openAPIDocument.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDocument)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// OpenAPI returns a copy of the OpenAPI 3.1 document (YAML) of the HTTP API.
func OpenAPI() []byte { return bytes.Clone(openAPIDocument) }

// openAPI serves the OpenAPI document (GET /openapi.yaml), with an ETag for
// conditional requests.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("ETag", openAPIETag)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "openapi.yaml", time.Time{}, bytes.NewReader(openAPIDocument))
}

// Routes returns the patterns registered on the server's mux ("GET
// /v1/imports/{id}", ...), sorted, including Config.Extra's.
//
// net/http has no API to list a ServeMux's patterns, so Routes reads them,
// read-only, from the mux's routing tree by reflection. It returns nil if a
// future net/http lays the tree out differently (or under
// GODEBUG=httpmuxgo121=1); recording the patterns as New registers them
// would remove that dependence.
func (s *Server) Routes() (routes []string) {
	defer func() {
		if recover() != nil {
			routes = nil
		}
	}()
	tree := reflect.ValueOf(s.mux).Elem().FieldByName("tree")
	if !tree.IsValid() || tree.Kind() != reflect.Struct {
		return nil
	}
	seen := map[string]bool{}
	collectPatterns(tree, seen, 0)
	for p := range seen {
		routes = append(routes, p)
	}
	slices.Sort(routes)
	return routes
}

// collectPatterns adds the patterns of the routingNode n and its descendants
// to seen. A node holds its pattern in pattern.str and its children in
// children (a mapping: a slice s of {key, value} entries or a map m),
// multiChild and emptyChild.
func collectPatterns(n reflect.Value, seen map[string]bool, depth int) {
	if depth > 64 || n.Kind() != reflect.Struct {
		return
	}
	if p := n.FieldByName("pattern"); p.IsValid() && p.Kind() == reflect.Pointer && !p.IsNil() {
		if str := p.Elem().FieldByName("str"); str.IsValid() && str.Kind() == reflect.String {
			seen[strings.Join(strings.Fields(str.String()), " ")] = true
		}
	}
	child := func(c reflect.Value) {
		if c.IsValid() && c.Kind() == reflect.Pointer && !c.IsNil() {
			collectPatterns(c.Elem(), seen, depth+1)
		}
	}
	if children := n.FieldByName("children"); children.IsValid() && children.Kind() == reflect.Struct {
		if entries := children.FieldByName("s"); entries.IsValid() && entries.Kind() == reflect.Slice {
			for i := range entries.Len() {
				if e := entries.Index(i); e.Kind() == reflect.Struct {
					child(e.FieldByName("value"))
				}
			}
		}
		if m := children.FieldByName("m"); m.IsValid() && m.Kind() == reflect.Map {
			for it := m.MapRange(); it.Next(); {
				child(it.Value())
			}
		}
	}
	child(n.FieldByName("multiChild"))
	child(n.FieldByName("emptyChild"))
}
