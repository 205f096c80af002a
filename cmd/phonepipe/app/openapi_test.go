package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gorilla/websocket"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// apiSpec is the OpenAPI document a running app serves, loaded for checking
// its answers.
type apiSpec struct {
	doc    *openapi3.T
	router routers.Router
}

// fetchSpec loads and validates the app's GET /openapi.yaml. Its object
// schemas are then made strict (no properties beyond the described ones,
// unless a schema says otherwise), so that a field the handlers add without
// documenting it fails the checks. The published document stays open, since
// the contract lets objects gain fields.
func fetchSpec(t *testing.T, base string) *apiSpec {
	t.Helper()
	resp, err := http.Get(base + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /openapi.yaml: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("load /openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.yaml does not validate: %v", err)
	}
	strictSchemas(doc)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiSpec{doc: doc, router: router}
}

func strictSchemas(doc *openapi3.T) {
	no := false
	seen := map[*openapi3.Schema]bool{}
	strict := func(ref *openapi3.SchemaRef) {
		if ref == nil {
			return
		}
		_ = ref.WalkSubtree(func(_ string, r *openapi3.SchemaRef) error {
			s := r.Value
			if s == nil || seen[s] {
				return nil
			}
			seen[s] = true
			if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
				s.AdditionalProperties.Has = &no
			}
			return nil
		})
	}
	for _, ref := range doc.Components.Schemas {
		strict(ref)
	}
	content := func(c openapi3.Content) {
		for _, mt := range c {
			strict(mt.Schema)
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody != nil {
				content(op.RequestBody.Value.Content)
			}
			for _, r := range op.Responses.Map() {
				content(r.Value.Content)
			}
		}
	}
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestOpenAPIDescribesTheServersRoutes checks, against the running server,
// that every operation of its document is served (or marked
// x-phonepipe-optional) and that every method the server serves at a
// documented path, or at a prefix of one, is documented. The methods come
// from the server's router: a request with a method no route uses is
// answered 405 with an Allow header listing the methods served at that path,
// or 404 when there are none, and no handler runs.
//
// Routes at paths that are neither documented nor prefixes of documented
// ones are only caught by the httpapi package's test, which lists the mux's
// patterns (the app does not expose its server's routes).
func TestOpenAPIDescribesTheServersRoutes(t *testing.T) {
	a := startApp(t, app.Config{APIKeys: "acme:key-acme"})
	spec := fetchSpec(t, a.URL())
	if m, ok := servedMethods(t, a.URL()+"/openapi-test/no/such/path"); ok {
		t.Fatalf("an unknown path is served (%v): a catch-all route hides what is registered", m)
	}
	paths := map[string]*openapi3.PathItem{}
	for path, item := range spec.doc.Paths.Map() {
		paths[path] = item
		subtree := false
		for _, op := range item.Operations() {
			if p, _ := op.Extensions["x-phonepipe-pattern"].(string); strings.HasSuffix(p, "/") {
				subtree = true // a Go subtree pattern also redirects its parent
			}
		}
		for i := 1; i < len(path); i++ {
			if subtree && strings.HasPrefix(path[i:], "/{") {
				break
			}
			if path[i] == '/' && paths[path[:i]] == nil {
				paths[path[:i]] = &openapi3.PathItem{}
			}
		}
	}
	for path, item := range paths {
		served, _ := servedMethods(t, a.URL()+pathParam.ReplaceAllString(path, "probe"))
		for method, op := range item.Operations() {
			if optional, _ := op.Extensions["x-phonepipe-optional"].(bool); !served[method] && !optional {
				t.Errorf("openapi.yaml describes %s %s, which the server does not serve", method, path)
			}
		}
		for method := range served {
			if item.GetOperation(method) == nil {
				t.Errorf("the server serves %s %s, which openapi.yaml does not describe", method, path)
			}
		}
	}
}

// servedMethods asks the server's router which methods it serves at url.
func servedMethods(t *testing.T, url string) (map[string]bool, bool) {
	t.Helper()
	req, err := http.NewRequest("OPENAPI-PROBE", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound,
		// Redirected to the same path with a slash: served there, not here.
		http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return nil, false
	case http.StatusMethodNotAllowed:
	default:
		t.Fatalf("OPENAPI-PROBE %s: %d; a route without a method serves every method", url, resp.StatusCode)
	}
	out := map[string]bool{}
	for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
		out[strings.TrimSpace(m)] = true
	}
	if out[http.MethodGet] {
		delete(out, http.MethodHead) // net/http answers HEAD for every GET route
	}
	delete(out, "")
	return out, true
}

// specClient sends requests to the app and checks each request and answer
// against the document.
type specClient struct {
	t    *testing.T
	spec *apiSpec
	base string
	key  string
}

type apiCall struct {
	method, path string
	contentType  string
	body         []byte
	header       map[string]string
	noAuth       bool
	// invalid marks a request that breaks the document on purpose (to get
	// an error answer): only the answer is checked.
	invalid bool
	want    int
}

func (c *specClient) request(k apiCall) *http.Request {
	c.t.Helper()
	req, err := http.NewRequest(k.method, c.base+k.path, bytes.NewReader(k.body))
	if err != nil {
		c.t.Fatal(err)
	}
	if k.contentType != "" {
		req.Header.Set("Content-Type", k.contentType)
	}
	if !k.noAuth {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for h, v := range k.header {
		req.Header.Set(h, v)
	}
	return req
}

var specOptions = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
	MultiError:            true,
}

func (c *specClient) do(k apiCall) (*http.Response, []byte) {
	c.t.Helper()
	name := k.method + " " + k.path
	vreq := c.request(k)
	route, params, err := c.spec.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s: no operation in openapi.yaml: %v", name, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: specOptions}
	if !k.invalid {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s: the request does not match openapi.yaml: %v", name, err)
		}
	}
	resp, err := http.DefaultClient.Do(c.request(k))
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != k.want {
		c.t.Fatalf("%s: %d %s, want %d", name, resp.StatusCode, body, k.want)
	}
	c.checkAnswer(name, in, resp, body)
	return resp, body
}

// checkAnswer validates an answer against the operation's responses. NDJSON
// is checked line by line against its media type's schema (a row), which
// openapi3filter cannot do.
func (c *specClient) checkAnswer(name string, in *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) {
	c.t.Helper()
	opts := *specOptions
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: &opts}
	out.SetBodyBytes(body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		// The page: its status and media type are checked, its markup is
		// transport/web's business.
		opts.ExcludeResponseBody = true
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		opts.ExcludeResponseBody = true
		var mt *openapi3.MediaType
		if r := in.Route.Operation.Responses.Status(resp.StatusCode); r != nil {
			mt = r.Value.Content.Get(resp.Header.Get("Content-Type"))
		}
		if mt == nil || mt.Schema == nil {
			c.t.Errorf("%s: answer %d has the undocumented type %q", name, resp.StatusCode, resp.Header.Get("Content-Type"))
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			c.checkValue(fmt.Sprintf("%s: NDJSON line %d", name, n), mt.Schema.Value, sc.Bytes())
		}
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s: answer %d does not match openapi.yaml: %v\nbody: %.2000s", name, resp.StatusCode, err, body)
	}
}

// checkValue validates one JSON value against a schema of the document.
func (c *specClient) checkValue(what string, schema *openapi3.Schema, data []byte) {
	c.t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		c.t.Errorf("%s: %v: %s", what, err, data)
		return
	}
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		c.t.Errorf("%s does not match openapi.yaml: %v\n%s", what, err, data)
	}
}

func (c *specClient) schema(name string) *openapi3.Schema {
	c.t.Helper()
	ref := c.spec.doc.Components.Schemas[name]
	if ref == nil {
		c.t.Fatalf("no schema %s in openapi.yaml", name)
	}
	return ref.Value
}

// hookReceiver accepts webhooks and checks each request against the
// document's webhooks section.
type hookReceiver struct {
	route *routers.Route
	mu    sync.Mutex
	got   []string // paths
	errs  []error
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in := &openapi3filter.RequestValidationInput{Request: r, Route: h.route, Options: specOptions}
	err := openapi3filter.ValidateRequest(r.Context(), in)
	h.mu.Lock()
	h.got = append(h.got, r.URL.Path)
	if err != nil {
		h.errs = append(h.errs, fmt.Errorf("webhook to %s does not match openapi.yaml: %w", r.URL.Path, err))
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) received(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range h.got {
		if p == path {
			n++
		}
	}
	return n
}

// TestOpenAPIDescribesRealAnswers runs imports through HTTP and checks the
// requests sent and every answer received against the served document.
func TestOpenAPIDescribesRealAnswers(t *testing.T) {
	a := startApp(t, app.Config{APIKeys: "acme:key-acme", WebhookAllowPrivate: true, MaxUploadBytes: 64 << 10})
	spec := fetchSpec(t, a.URL())
	c := &specClient{t: t, spec: spec, base: a.URL(), key: "key-acme"}

	hookOp := spec.doc.Webhooks["import.completed"]
	if hookOp == nil || hookOp.Post == nil {
		t.Fatal("openapi.yaml describes no import.completed webhook")
	}
	hooks := &hookReceiver{route: &routers.Route{Spec: spec.doc, Path: "import.completed", PathItem: hookOp,
		Method: http.MethodPost, Operation: hookOp.Post}}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	// Subscriptions.
	_, b := c.do(apiCall{method: "POST", path: "/v1/webhooks", contentType: "application/json",
		body: []byte(`{"url":"` + hookSrv.URL + `/sub","event_types":["import.completed"]}`), want: http.StatusCreated})
	var sub struct{ ID string }
	if err := json.Unmarshal(b, &sub); err != nil || sub.ID == "" {
		t.Fatalf("subscription %s: %v", b, err)
	}
	c.do(apiCall{method: "GET", path: "/v1/webhooks", want: http.StatusOK})

	// Uploads of every kind.
	csvBody := csvOf(mixedRows(40, 11))
	_, b = c.do(apiCall{method: "POST", path: "/v1/imports?default_region=HU&webhook_url=" + url.QueryEscape(hookSrv.URL+"/import"),
		contentType: "text/csv", body: csvBody, header: map[string]string{"Idempotency-Key": "openapi-1"}, want: http.StatusAccepted})
	var acc struct{ ID string }
	if err := json.Unmarshal(b, &acc); err != nil || acc.ID == "" {
		t.Fatalf("accepted %s: %v", b, err)
	}
	id := acc.ID
	c.do(apiCall{method: "POST", path: "/v1/imports", contentType: "text/csv", body: csvBody,
		header: map[string]string{"Idempotency-Key": "openapi-1"}, want: http.StatusOK})
	c.do(apiCall{method: "POST", path: "/v1/imports", contentType: "application/json",
		body: []byte(`{"default_region":"US","numbers":["(650) 253-0000","+36 1 234 5678"]}`), want: http.StatusAccepted})
	c.do(apiCall{method: "POST", path: "/v1/imports", contentType: "application/json",
		body: []byte(`{"rows":[{"number":"06 30 123 4567","region":"HU","ref":"crm-1"},{"number":"+44 20 7946 0958","region":null}]}`),
		want: http.StatusAccepted})
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	_ = mw.WriteField("default_region", "DE")
	fw, _ := mw.CreateFormFile("file", "numbers.csv")
	_, _ = fw.Write([]byte("number\n030 123456\n"))
	_ = mw.Close()
	c.do(apiCall{method: "POST", path: "/v1/imports", contentType: mw.FormDataContentType(), body: form.Bytes(), want: http.StatusAccepted})

	// The import, while it runs and once completed.
	deadline := time.Now().Add(time.Minute)
	for {
		_, b := c.do(apiCall{method: "GET", path: "/v1/imports/" + id, want: http.StatusOK})
		var s importSummary
		_ = json.Unmarshal(b, &s)
		if s.Status == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import %s not completed: %s", id, b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Live progress, authenticated by ?token= as browsers do.
	checkProgress(t, c, id)

	// Results in every format.
	c.do(apiCall{method: "GET", path: "/v1/imports/" + id + "/results", want: http.StatusOK})
	c.do(apiCall{method: "GET", path: "/v1/imports/" + id + "/results?format=ndjson", want: http.StatusOK})
	c.do(apiCall{method: "GET", path: "/v1/imports/" + id + "/results?format=csv", want: http.StatusOK})
	_, b = c.do(apiCall{method: "GET", path: "/v1/imports/" + id + "/results?format=json", want: http.StatusOK})
	var rows []resultRow
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) != 40 {
		t.Fatalf("%d results: %v", len(rows), err)
	}

	// A number and its events, plain and URL-encoded.
	e164 := ""
	for _, r := range rows {
		if r.Valid {
			e164 = r.E164
			break
		}
	}
	if e164 == "" {
		t.Fatal("no valid number among the results")
	}
	for _, p := range []string{e164, strings.Replace(e164, "+", "%2B", 1)} {
		c.do(apiCall{method: "GET", path: "/v1/numbers/" + p, want: http.StatusOK})
		c.do(apiCall{method: "GET", path: "/v1/numbers/" + p + "/events", want: http.StatusOK})
	}

	// Error answers.
	for _, k := range []apiCall{
		{method: "GET", path: "/v1/imports/" + id, noAuth: true, want: http.StatusUnauthorized},
		{method: "POST", path: "/v1/imports", contentType: "text/csv", body: csvBody, noAuth: true, want: http.StatusUnauthorized},
		{method: "GET", path: "/v1/imports/imp_nope", want: http.StatusNotFound},
		{method: "GET", path: "/v1/imports/imp_nope/results", want: http.StatusNotFound},
		{method: "GET", path: "/v1/imports/" + id + "/results?format=xml", invalid: true, want: http.StatusBadRequest},
		{method: "GET", path: "/v1/numbers/not-a-number", want: http.StatusBadRequest},
		{method: "GET", path: "/v1/numbers/+14155550000", want: http.StatusNotFound},
		{method: "GET", path: "/v1/numbers/+14155550000/events", want: http.StatusNotFound},
		{method: "POST", path: "/v1/imports", contentType: "text/csv", body: []byte("number,ref\n\"+3612345678,x\n"), invalid: true, want: http.StatusBadRequest},
		{method: "POST", path: "/v1/imports", contentType: "application/json", body: []byte(`{"numbers":[`), invalid: true, want: http.StatusBadRequest},
		{method: "POST", path: "/v1/imports", contentType: "text/csv", body: csvBody, invalid: true,
			header: map[string]string{"Idempotency-Key": strings.Repeat("k", 192)}, want: http.StatusBadRequest},
		{method: "POST", path: "/v1/imports", contentType: "text/csv", body: bytes.Repeat([]byte("+3612345678\n"), 8<<10), want: http.StatusRequestEntityTooLarge},
		{method: "POST", path: "/v1/imports", contentType: "text/plain", body: csvBody, invalid: true, want: http.StatusUnsupportedMediaType},
		{method: "POST", path: "/v1/imports", contentType: "application/json", body: []byte(`{"numbers":[]}`), invalid: true, want: http.StatusUnprocessableEntity},
		{method: "POST", path: "/v1/imports?default_region=XX", contentType: "text/csv", body: csvBody, want: http.StatusUnprocessableEntity},
		{method: "POST", path: "/v1/imports?webhook_url=ftp%3A%2F%2Fexample.com%2F", contentType: "text/csv", body: csvBody, want: http.StatusUnprocessableEntity},
		{method: "POST", path: "/v1/webhooks", contentType: "application/json", body: []byte(`{"url":"https://example.com","secret":"x"}`), invalid: true, want: http.StatusBadRequest},
		{method: "POST", path: "/v1/webhooks", contentType: "application/json", body: []byte(`{"url":"https://example.com","event_types":["import.started"]}`), invalid: true, want: http.StatusUnprocessableEntity},
		{method: "DELETE", path: "/v1/webhooks/sub_nope", want: http.StatusNotFound},
		{method: "GET", path: "/v1/webhooks/sub_nope/deliveries", want: http.StatusNotFound},
		{method: "POST", path: "/v1/webhooks/" + sub.ID + "/deliveries/dlv_nope/resend", want: http.StatusNotFound},
		{method: "GET", path: "/v1/imports/" + id + "/progress?since=-1", invalid: true, want: http.StatusBadRequest},
		{method: "GET", path: "/v1/imports/" + id + "/progress", invalid: true, want: http.StatusBadRequest},
	} {
		c.do(k)
	}

	// Deliveries: the subscription's and the per-import URL's webhooks arrive.
	for time.Now().Before(deadline) && (hooks.received("/sub") == 0 || hooks.received("/import") == 0) {
		time.Sleep(20 * time.Millisecond)
	}
	if hooks.received("/sub") == 0 || hooks.received("/import") == 0 {
		t.Fatalf("webhooks received: subscription %d, per-import %d", hooks.received("/sub"), hooks.received("/import"))
	}
	_, b = c.do(apiCall{method: "GET", path: "/v1/webhooks/" + sub.ID + "/deliveries", want: http.StatusOK})
	var ds struct{ Deliveries []struct{ ID string } }
	if err := json.Unmarshal(b, &ds); err != nil || len(ds.Deliveries) == 0 {
		t.Fatalf("deliveries %s: %v", b, err)
	}
	c.do(apiCall{method: "POST", path: "/v1/webhooks/" + sub.ID + "/deliveries/" + ds.Deliveries[0].ID + "/resend", want: http.StatusAccepted})
	c.do(apiCall{method: "DELETE", path: "/v1/webhooks/" + sub.ID, want: http.StatusNoContent})
	c.do(apiCall{method: "GET", path: "/v1/webhooks/" + sub.ID + "/deliveries", want: http.StatusNotFound})
	hooks.mu.Lock()
	for _, err := range hooks.errs {
		t.Error(err)
	}
	hooks.mu.Unlock()

	// Operations, and the optional routes when this server has them.
	c.do(apiCall{method: "GET", path: "/healthz", noAuth: true, want: http.StatusOK})
	c.do(apiCall{method: "GET", path: "/readyz", noAuth: true, want: http.StatusOK})
	c.do(apiCall{method: "GET", path: "/openapi.yaml", noAuth: true, want: http.StatusOK})
	for _, p := range []string{"/metrics", "/"} {
		if served, _ := servedMethods(t, a.URL()+p); served[http.MethodGet] {
			c.do(apiCall{method: "GET", path: p, noAuth: true, want: http.StatusOK})
		}
	}
}

// checkProgress opens the live-progress WebSocket of a completed import and
// checks the handshake and every message against the document.
func checkProgress(t *testing.T, c *specClient, id string) {
	t.Helper()
	path := "/v1/imports/" + id + "/progress?token=" + c.key
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := dialer.Dial("ws"+strings.TrimPrefix(c.base, "http")+path, nil)
	if err != nil {
		t.Fatalf("dial progress: %v", err)
	}
	defer conn.Close()
	// The handshake as the document describes it (the dialer's own request
	// is not at hand).
	req := c.request(apiCall{method: "GET", path: path, noAuth: true, header: map[string]string{
		"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}})
	route, params, err := c.spec.router.FindRoute(req)
	if err != nil {
		t.Fatalf("progress: no operation in openapi.yaml: %v", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: specOptions}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Errorf("progress: the handshake does not match openapi.yaml: %v", err)
	}
	opts := *specOptions
	opts.ExcludeResponseBody = true // a 101 has no body; its messages are checked below
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: &opts}
	out.SetBodyBytes(nil)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("progress: the handshake answer does not match openapi.yaml: %v", err)
	}
	msgSchema := c.schema("ProgressMessage")
	var types []string
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !slices.Contains(types, "completed") {
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("progress after %v: %v", types, err)
		}
		c.checkValue("progress message", msgSchema, data)
		var m struct{ Type string }
		_ = json.Unmarshal(data, &m)
		types = append(types, m.Type)
	}
	if types[0] != "snapshot" {
		t.Errorf("progress messages %v: the first is not a snapshot", types)
	}
}
