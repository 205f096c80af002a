package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/httpapi"
	"github.com/phonepipe/phonepipe/transport/live"
	"github.com/phonepipe/phonepipe/transport/storage"
	"github.com/phonepipe/phonepipe/transport/webhooks"
)

// loadSpec loads and validates the embedded OpenAPI document.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		t.Fatalf("openapi.yaml does not validate:\n%v", err)
	}
	return doc
}

// specRoutes maps the ServeMux pattern of every operation of doc to whether
// the operation is optional (x-phonepipe-optional).
func specRoutes(t *testing.T, doc *openapi3.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			if p, ok := op.Extensions["x-phonepipe-pattern"].(string); ok {
				pattern = p
			}
			optional, _ := op.Extensions["x-phonepipe-optional"].(bool)
			if _, dup := out[pattern]; dup {
				t.Errorf("two operations have the pattern %q", pattern)
			}
			out[pattern] = optional
		}
	}
	return out
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, any) error { return nil }

// newServer builds a server that is never asked to touch its stores.
func newServer(t *testing.T, full bool) *httpapi.Server {
	t.Helper()
	db := &storage.DB{}
	cfg := httpapi.Config{
		DB:      db,
		Imports: projections.NewImports(db),
		Results: projections.NewResults(db),
		Numbers: projections.NewNumbers(db),
		Uploads: storage.NewUploads(db),
		Events:  nopPublisher{},
	}
	if full {
		cfg.Webhooks = webhooks.NewStore(nil, webhooks.Dialect(db.Dialect))
		cfg.Live = live.NewHub(live.Config{})
		page := http.NotFoundHandler()
		cfg.Extra = []httpapi.Route{
			{Pattern: "GET /metrics", Handler: page},
			{Pattern: "GET /{$}", Handler: page},
			{Pattern: "GET /assets/", Handler: page},
		}
	}
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi: %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Components.Schemas["ProgressMessage"] == nil {
		t.Error("no ProgressMessage schema")
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: missing or repeated operationId %q", name, op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Security == nil {
				t.Errorf("%s: no security (want bearerAuth on /v1, [] elsewhere)", name)
				continue
			}
			bearer := slices.ContainsFunc(*op.Security, func(r openapi3.SecurityRequirement) bool {
				_, ok := r["bearerAuth"]
				return ok
			})
			v1 := strings.HasPrefix(path, "/v1/")
			if bearer != v1 {
				t.Errorf("%s: bearerAuth %v, want %v", name, bearer, v1)
			}
			if v1 && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s: no 401", name)
			}
			// Every JSON error answer of the API has the error shape.
			for code, resp := range op.Responses.Map() {
				if !v1 || code < "400" || code == "default" {
					continue
				}
				mt := resp.Value.Content.Get("application/json")
				if mt == nil {
					continue
				}
				if ref := mt.Schema.Ref; ref != "#/components/schemas/Error" {
					t.Errorf("%s %s: JSON error schema %q, want the Error schema", name, code, ref)
				}
			}
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	srv := httptest.NewServer(newServer(t, false).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /openapi.yaml: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if string(body) != string(httpapi.OpenAPI()) {
		t.Fatal("served document differs from the embedded one")
	}
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/openapi.yaml", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET with ETag %q: %d, want 304", etag, resp.StatusCode)
	}
}

// TestOpenAPIDescribesEveryRoute compares the patterns the server registers
// with the operations of the document, both ways.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	spec := specRoutes(t, loadSpec(t))
	for _, full := range []bool{true, false} {
		routes := newServer(t, full).Routes()
		if !slices.Contains(routes, "GET /healthz") {
			t.Fatalf("Routes() = %q: cannot read the mux's patterns (net/http changed?)", routes)
		}
		for _, r := range routes {
			if _, ok := spec[r]; !ok {
				t.Errorf("route %q is registered but not in openapi.yaml", r)
			}
		}
		if !full {
			continue
		}
		for _, p := range slices.Sorted(maps.Keys(spec)) {
			if !slices.Contains(routes, p) {
				t.Errorf("openapi.yaml describes %q (optional: %v), which the fully configured server does not register", p, spec[p])
			}
		}
	}
}

// TestOpenAPISchemasMatchGoTypes checks the schemas of the JSON the handlers
// encode from exported types against those types' json tags: the same
// property names, the fields without omitempty required, nil-able pointers
// nullable, and compatible types.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := loadSpec(t)
	for name, typ := range map[string]reflect.Type{
		"ImportSummary":   reflect.TypeFor[domain.ImportSummary](),
		"ResultRow":       reflect.TypeFor[projections.ResultRow](),
		"NumberValidated": reflect.TypeFor[domain.NumberValidated](),
		"Enrichment":      reflect.TypeFor[phone.Result](),
		"Number":          reflect.TypeFor[projections.Number](),
		"NumberEvent":     reflect.TypeFor[projections.StoredEvent](),
		"Subscription":    reflect.TypeFor[webhooks.Subscription](),
		"Delivery":        reflect.TypeFor[webhooks.Delivery](),
		"Attempt":         reflect.TypeFor[webhooks.Attempt](),
	} {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("no schema %s", name)
			continue
		}
		checkSchema(t, name, ref.Value, typ)
	}
}

// notProduced are schema properties no Go field produces yet.
var notProduced = map[string]bool{"ResultRow.lookup": true}

func checkSchema(t *testing.T, name string, s *openapi3.Schema, typ reflect.Type) {
	t.Helper()
	fields := jsonFields(typ)
	for prop := range s.Properties {
		if _, ok := fields[prop]; !ok && !notProduced[name+"."+prop] {
			t.Errorf("%s.%s: in the schema but not in %s", name, prop, typ)
		}
	}
	for field, f := range fields {
		prop := s.Properties[field]
		if prop == nil {
			t.Errorf("%s.%s: %s has it, the schema does not", name, field, typ)
			continue
		}
		if required := slices.Contains(s.Required, field); required == f.omitempty {
			t.Errorf("%s.%s: required %v, but omitempty is %v", name, field, required, f.omitempty)
		}
		want := schemaType(f.typ)
		if want == "" {
			continue
		}
		got := prop.Value.Type
		if got == nil || !got.Includes(want) {
			t.Errorf("%s.%s: schema type %v, Go type %s wants %q", name, field, got, f.typ, want)
		}
		nullable := got != nil && got.Includes("null")
		if nilable := f.typ.Kind() == reflect.Pointer && !f.omitempty; nilable != nullable {
			t.Errorf("%s.%s: nullable %v, Go type %s (omitempty %v)", name, field, nullable, f.typ, f.omitempty)
		}
	}
}

type jsonField struct {
	typ       reflect.Type
	omitempty bool
}

// jsonFields lists the JSON object members encoding/json writes for typ.
func jsonFields(typ reflect.Type) map[string]jsonField {
	out := map[string]jsonField{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			maps.Copy(out, jsonFields(f.Type))
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = jsonField{typ: f.Type, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty")}
	}
	return out
}

// schemaType is the JSON Schema type encoding/json writes for typ, or "" if
// it cannot tell (raw JSON).
func schemaType(typ reflect.Type) string {
	if typ == reflect.TypeFor[json.RawMessage]() {
		return ""
	}
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == reflect.TypeFor[time.Time]() {
		return "string"
	}
	switch typ.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return ""
}
