package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

func TestBadInputGetsClearErrors(t *testing.T) {
	a := startApp(t, app.Config{MaxUploadBytes: 1 << 20})
	base := a.URL()
	tests := []struct {
		name        string
		contentType string
		body        string
		query       string
		status      int
		code        string
	}{
		{"empty body", "text/csv", "", "", http.StatusBadRequest, "empty_body"},
		{"unsupported type", "application/xml", "<numbers/>", "", http.StatusUnsupportedMediaType, ""},
		{"header only", "text/csv", "number\n", "", http.StatusUnprocessableEntity, "no_rows"},
		{"malformed json", "application/json", `{"numbers": ["+3612345678",`, "", http.StatusBadRequest, "malformed_json"},
		{"unknown default region", "text/csv", "number\n06301234567\n", "?default_region=XX", http.StatusUnprocessableEntity, "unknown_region"},
		{"unknown region in json", "application/json", `{"default_region":"QQ","numbers":["1"]}`, "", http.StatusUnprocessableEntity, "unknown_region"},
		{"bad webhook url", "text/csv", "number\n+3612345678\n", "?webhook_url=ftp://x", http.StatusUnprocessableEntity, "invalid_webhook_url"},
		{"unclosed quote", "text/csv", "number\n\"+3612345678\n", "", http.StatusBadRequest, "malformed_csv"},
		{"too large", "text/csv", "number\n" + strings.Repeat("+3612345678\n", 100_000), "", http.StatusRequestEntityTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := post(t, base+"/v1/imports"+tc.query, tc.contentType, []byte(tc.body), nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			var e struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" || e.Error.Code == "" {
				t.Fatalf("error body %q is not the contract's shape (%v)", b, err)
			}
			if tc.code != "" && e.Error.Code != tc.code {
				t.Fatalf("code %q, want %q (%s)", e.Error.Code, tc.code, e.Error.Message)
			}
		})
	}
}

func TestJunkRowsAreResultsNotErrors(t *testing.T) {
	a := startApp(t, app.Config{})
	base := a.URL()
	body := `{"default_region":"HU","rows":[{"number":"not a number","ref":"a"},{"number":"06 30 123 4567","ref":"b"},{"number":"+1 555","ref":"c"},{"number":"+999 1234","ref":"d"}]}`
	resp, b := post(t, base+"/v1/imports", "application/json", []byte(body), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var acc struct{ ID string }
	_ = json.Unmarshal(b, &acc)
	sum := waitCompleted(t, base, acc.ID, time.Minute)
	if sum.Total != 4 || sum.Valid != 1 || sum.Invalid != 3 {
		t.Fatalf("summary %+v, want 4 rows, 1 valid, 3 invalid", sum)
	}
	rows := results(t, base, acc.ID)
	want := []struct {
		ref, reason, region string
		valid               bool
	}{{"a", "NOT_A_NUMBER", "HU", false}, {"b", "", "HU", true}, {"c", "TOO_SHORT", "HU", false}, {"d", "INVALID_COUNTRY_CODE", "HU", false}}
	for i, w := range want {
		r := rows[i]
		if r.Ref != w.ref || r.Reason != w.reason || r.Valid != w.valid || r.Region != w.region {
			t.Errorf("row %d: %+v, want %+v", i+1, r, w)
		}
	}
}

func TestMultipartUploadAndIdempotencyKey(t *testing.T) {
	a := startApp(t, app.Config{})
	base := a.URL()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("default_region", "GB")
	fw, _ := mw.CreateFormFile("file", "list.csv")
	fmt.Fprint(fw, "name;mobile\nAda;07400 123456\nBob;07400 123457\n")
	_ = mw.Close()
	hdr := map[string]string{"Idempotency-Key": "upload-1"}
	first, b1 := post(t, base+"/v1/imports", mw.FormDataContentType(), buf.Bytes(), hdr)
	if first.StatusCode != http.StatusAccepted {
		t.Fatalf("first upload: %d %s", first.StatusCode, b1)
	}
	again, b2 := post(t, base+"/v1/imports", mw.FormDataContentType(), buf.Bytes(), hdr)
	if again.StatusCode != http.StatusOK || !bytes.Equal(b1, b2) {
		t.Fatalf("repeat with the same key: %d %s, want 200 and %s", again.StatusCode, b2, b1)
	}
	var acc struct{ ID string }
	_ = json.Unmarshal(b1, &acc)
	sum := waitCompleted(t, base, acc.ID, time.Minute)
	if sum.Valid != 2 {
		t.Fatalf("summary %+v, want 2 valid GB mobiles", sum)
	}
	other, _ := post(t, base+"/v1/imports", mw.FormDataContentType(), buf.Bytes(), map[string]string{"Idempotency-Key": "upload-2"})
	if other.StatusCode != http.StatusAccepted {
		t.Fatalf("a new key must create a new import, got %d", other.StatusCode)
	}
}

// TestAcceptedBeforeProcessed runs only the api role, so nothing can process
// the upload: the 202 must come anyway, with the rows stored and unprocessed.
// A worker process (every other role) started later on the same data
// picks it up.
func TestAcceptedBeforeProcessed(t *testing.T) {
	dir := t.TempDir()
	api := startApp(t, app.Config{DataDir: dir, Roles: []string{app.RoleAPI}})
	var b strings.Builder
	b.WriteString("number\n")
	for i := range 100_000 {
		fmt.Fprintf(&b, "+3630%07d\n", i)
	}
	id := mustAccept(t, api.URL(), []byte(b.String()))
	var s importSummary
	if code := getJSON(t, api.URL()+"/v1/imports/"+id, &s); code != http.StatusOK {
		t.Fatalf("GET import: %d", code)
	}
	if s.Status != "accepted" || s.Processed != 0 || s.Total != 100_000 {
		t.Fatalf("right after 202: %+v, want accepted with 0 of 100000 processed", s)
	}
	// Workers started later pick the stored rows up. (Completing all
	// 100,000 rows is the crash and benchmark tests' business; here it is
	// enough that processing starts from what the API stored.)
	startApp(t, app.Config{DataDir: dir, Roles: []string{app.RoleSplit, app.RoleValidate, app.RoleProject, app.RoleAggregate}})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code := getJSON(t, api.URL()+"/v1/imports/"+id, &s); code != http.StatusOK {
			t.Fatalf("GET import: %d", code)
		}
		if s.Status == "processing" && s.Processed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers did not start on the stored rows: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
