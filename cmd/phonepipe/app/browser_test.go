package app_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/transport/web"
)

// chromiumEnv names the browser the browser tests drive.
const chromiumEnv = "PHONEPIPE_TEST_CHROMIUM"

// browser starts a headless Chromium for the test, bounded by ctx, and
// returns a tab context and a record of what the page did. The test skips
// when PHONEPIPE_TEST_CHROMIUM is unset.
func browser(t *testing.T, ctx context.Context) (context.Context, *pageLog) {
	t.Helper()
	exe := os.Getenv(chromiumEnv)
	if exe == "" {
		t.Skipf("%s is not set; set it to a Chromium binary (e.g. /usr/bin/chromium) to run the browser test", chromiumEnv)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1000, 900),
		chromedp.UserDataDir(userDataDir(t)),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	log := &pageLog{}
	if err := chromedp.Listen(tab, log.record); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	return tab, log
}

// userDataDir is a fresh profile directory. It is removed with retries:
// Chromium's helpers may still write there for a moment after it exits.
func userDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "phonepipe-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// pageLog records the page's console errors, exceptions and received
// WebSocket messages.
type pageLog struct {
	mu       sync.Mutex
	problems []string
	frames   []string
}

// record is the chromedp listener; it must return fast.
func (l *pageLog) record(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		l.problems = append(l.problems, "exception: "+(&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			l.problems = append(l.problems, "console.error: "+strings.Join(parts, " "))
		}
	case *cdplog.EventEntryAdded:
		if e := ev.Entry; e != nil && (e.Level == cdplog.EntryLevelError || e.Source == cdplog.EntrySourceSecurity) {
			l.problems = append(l.problems, fmt.Sprintf("browser log (%s): %s %s", e.Source, e.Text, e.URL))
		}
	case *network.EventWebSocketFrameReceived:
		if ev.Response != nil {
			l.frames = append(l.frames, string(ev.Response.PayloadData))
		}
	}
}

func (l *pageLog) snapshot() (problems, frames []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.problems...), append([]string(nil), l.frames...)
}

// screenshot saves the page as a PNG that outlives the test and logs where.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	f, err := os.CreateTemp("", "phonepipe-"+name+"-*.png")
	if err == nil {
		_, err = f.Write(png)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot of the page (%s): %s", name, f.Name())
}

// pageCounts is what the page shows once an import completes.
type pageCounts struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Percent    string `json:"percent"`
	Value      int    `json:"value"`
	Max        int    `json:"max"`
	Total      int    `json:"total"`
	Valid      int    `json:"valid"`
	Invalid    int    `json:"invalid"`
	Duplicates int    `json:"duplicates"`
	Failed     int    `json:"failed"`
	CSV        string `json:"csv"`
	NDJSON     string `json:"ndjson"`
	Error      string `json:"error"`
}

const readPage = `(() => {
	const q = (s) => document.querySelector(s);
	const n = (k) => Number(q('#summary [data-count=' + k + ']').textContent);
	return {
		id: q('#import-id').textContent, status: q('#status').textContent, percent: q('#percent').textContent,
		value: q('#progress').value, max: q('#progress').max,
		total: n('total'), valid: n('valid'), invalid: n('invalid'), duplicates: n('duplicates'), failed: n('failed'),
		csv: q('#download-csv').getAttribute('href'), ndjson: q('#download-ndjson').getAttribute('href'),
		error: q('#error').hidden ? '' : q('#error').textContent,
	};
})()`

// TestBrowserUploadShowsLiveProgressAndResults drives the browser page in
// headless Chromium: upload ~2,000 mixed rows with a default region, follow
// the live progress to completion, and compare the counts the page shows
// with the API's. Then an unusable upload shows the server's error.
func TestBrowserUploadShowsLiveProgressAndResults(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tab, log := browser(t, ctx)
	a := startApp(t, app.Config{})
	base := a.URL()

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s; the browser page (transport/web) is not mounted", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	browserFlow(t, tab, log, base)
}

// browserFlow is the test's user story against the service at base.
func browserFlow(t *testing.T, tab context.Context, log *pageLog, base string) {
	t.Helper()
	dir := t.TempDir()
	const rows = 2000
	file := filepath.Join(dir, "numbers.csv")
	samples := mixedRows(rows, 7)
	if err := os.WriteFile(file, csvOf(samples), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := chromedp.Do(tab,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("file")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}),
		chromedp.SendKeys(chromedp.ID("region"), "hu"),
		chromedp.Click(chromedp.ID("submit")),
	)
	if err != nil {
		t.Fatalf("upload through the page: %v", err)
	}
	_, err = chromedp.Run(tab, chromedp.Poll[bool](
		`(document.querySelector('#status').textContent === 'completed' && document.querySelector('#percent').textContent === '100%') ||
		 !document.querySelector('#error').hidden`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute)))
	if err != nil {
		screenshot(t, tab, "timeout")
		t.Fatalf("waiting for completion on the page: %v", err)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[pageCounts](readPage))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	screenshot(t, tab, "completed")
	t.Logf("page completed the import in %s: %+v", time.Since(start).Round(time.Millisecond), got)
	if got.Error != "" {
		t.Fatalf("page shows an error: %s", got.Error)
	}

	var want importSummary
	if code := getJSON(t, base+"/v1/imports/"+got.ID, &want); code != http.StatusOK {
		t.Fatalf("GET import %q: %d", got.ID, code)
	}
	if want.Status != "completed" || want.Total != rows {
		t.Fatalf("API says %+v; want a completed import of %d rows", want, rows)
	}
	if got.Total != want.Total || got.Valid != want.Valid || got.Invalid != want.Invalid ||
		got.Duplicates != want.Duplicates || got.Failed != want.Failed {
		t.Errorf("page counts %+v differ from the API's %+v", got, want)
	}
	if got.Value != got.Max || got.Max != rows {
		t.Errorf("progress bar at %d of %d; want %d of %d", got.Value, got.Max, rows, rows)
	}
	// The region typed on the page reached the server: rows without a
	// region of their own were parsed with HU.
	for _, r := range results(t, base, got.ID) {
		if r.Row < 1 || r.Row > len(samples) {
			t.Fatalf("result row %d out of range", r.Row)
		}
		if want := cmp.Or(samples[r.Row-1].region, "HU"); r.Region != want {
			t.Errorf("row %d (%q) has region %q, want %q; the page did not send default_region", r.Row, r.Input, r.Region, want)
			break
		}
	}

	// Progress came over the WebSocket: a snapshot first, one completed.
	_, frames := log.snapshot()
	var types []string
	for _, f := range frames {
		var m struct{ Type string }
		if json.Unmarshal([]byte(f), &m) == nil {
			types = append(types, m.Type)
		}
	}
	if len(types) == 0 || types[0] != "snapshot" || strings.Count(strings.Join(types, ","), "completed") != 1 {
		t.Errorf("WebSocket messages %v; want a snapshot first and exactly one completed", types)
	}

	// The download links serve the results.
	for link, wantType := range map[string]string{got.CSV: "text/csv", got.NDJSON: "application/x-ndjson"} {
		if !strings.HasPrefix(link, "/v1/imports/"+got.ID+"/results?format=") {
			t.Errorf("download link %q", link)
			continue
		}
		resp, err := http.Get(base + link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) {
			t.Errorf("GET %s: %d %s", link, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if lines := strings.Count(string(body), "\n"); lines < rows {
			t.Errorf("GET %s: %d lines for %d rows", link, lines, rows)
		}
	}

	// An upload the server refuses shows its message.
	empty := filepath.Join(dir, "empty.csv")
	if err := os.WriteFile(empty, []byte("number,region\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(tab,
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{empty}),
		chromedp.Click(chromedp.ID("submit")),
	)
	if err != nil {
		t.Fatalf("upload the empty file: %v", err)
	}
	msg, err := chromedp.Run(tab, chromedp.Poll[string](
		`!document.querySelector('#error').hidden && document.querySelector('#error').textContent`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		screenshot(t, tab, "error-timeout")
		t.Fatalf("waiting for the error: %v", err)
	}
	screenshot(t, tab, "error")
	if !strings.Contains(msg, "422") || !strings.Contains(msg, "no data rows") {
		t.Errorf("error box says %q; want the 422 and the server's message", msg)
	}

	problems, _ := log.snapshot()
	for _, p := range problems {
		// The refused upload logs its 422 to the console; nothing else may.
		if strings.Contains(p, "422") {
			continue
		}
		t.Errorf("page problem: %s", p)
	}
}

// fakeProgress is a stand-in API for the page: it accepts one upload and
// serves its progress over a WebSocket that drops after the first messages,
// so the page has to resume with ?since=.
type fakeProgress struct {
	t      *testing.T
	mu     sync.Mutex
	sinces []string
	tokens []string
	auths  []string // Authorization of the plain requests
}

const fakeImport = "imp_browserfake"

func (f *fakeProgress) state(status string, processed int) map[string]any {
	s := map[string]any{"id": fakeImport, "status": status, "total": 100, "processed": processed,
		"valid": 0, "invalid": 0, "duplicates": 0, "failed": 0}
	if status == "completed" {
		s["valid"], s["invalid"], s["duplicates"], s["failed"] = 60, 30, 9, 1
	}
	return s
}

func (f *fakeProgress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") && r.Header.Get("Upgrade") == "" {
		f.mu.Lock()
		f.auths = append(f.auths, r.Method+" "+r.Header.Get("Authorization"))
		f.mu.Unlock()
	}
	switch r.URL.Path {
	case "/v1/imports":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": fakeImport, "status": "accepted", "total": 100})
	case "/v1/imports/" + fakeImport:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.state("processing", 40))
	case "/v1/imports/" + fakeImport + "/progress":
		f.mu.Lock()
		n := len(f.sinces)
		f.sinces = append(f.sinces, r.URL.Query().Get("since"))
		f.tokens = append(f.tokens, r.URL.Query().Get("token"))
		f.mu.Unlock()
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			f.t.Errorf("upgrade: %v", err)
			return
		}
		defer c.Close()
		send := func(typ string, seq int64, s map[string]any) {
			if err := c.WriteJSON(map[string]any{"type": typ, "seq": seq, "import": s}); err != nil {
				f.t.Errorf("write %s: %v", typ, err)
			}
		}
		if n == 0 {
			send("snapshot", 1, f.state("accepted", 0))
			send("progress", 5, f.state("processing", 40))
			time.Sleep(200 * time.Millisecond)
			_ = c.NetConn().Close() // drop without a close frame
			return
		}
		send("snapshot", 6, f.state("processing", 70))
		send("completed", 7, f.state("completed", 100))
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	default:
		web.Handler().ServeHTTP(w, r)
	}
}

// TestBrowserResumesProgressAfterDrop checks the page's reconnect logic: the
// socket drops mid-way, the page reconnects with since=<last seq> and the API
// key as ?token=, and shows the completed import.
func TestBrowserResumesProgressAfterDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tab, log := browser(t, ctx)
	f := &fakeProgress{t: t}
	srv := httptest.NewServer(f)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "n.csv")
	if err := os.WriteFile(file, []byte("number\n+36301234567\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(tab,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("file")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}),
		chromedp.SetValue(chromedp.ID("api-key"), "k3y", chromedp.NodeReady),
		chromedp.Click(chromedp.ID("submit")),
	)
	if err != nil {
		t.Fatalf("upload through the page: %v", err)
	}
	_, err = chromedp.Run(tab, chromedp.Poll[bool](`document.querySelector('#status').textContent === 'completed'`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		screenshot(t, tab, "resume-timeout")
		t.Fatalf("waiting for completion: %v", err)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[pageCounts](readPage))
	if err != nil {
		t.Fatal(err)
	}
	if got.Percent != "100%" || got.Valid != 60 || got.Invalid != 30 || got.Duplicates != 9 || got.Failed != 1 || got.Error != "" {
		t.Errorf("page shows %+v; want the completed counts", got)
	}
	f.mu.Lock()
	sinces, tokens, auths := append([]string(nil), f.sinces...), append([]string(nil), f.tokens...), append([]string(nil), f.auths...)
	f.mu.Unlock()
	if len(auths) == 0 || auths[0] != "POST Bearer k3y" {
		t.Errorf("plain requests %q; want the upload with the API key as Bearer", auths)
	}
	for _, a := range auths {
		if !strings.HasSuffix(a, " Bearer k3y") {
			t.Errorf("request %q without the API key", a)
		}
	}
	if fmt.Sprint(sinces) != "[ 5]" {
		t.Errorf("since parameters %q; want a first connection without and a second with since=5", sinces)
	}
	for _, tok := range tokens {
		if tok != "k3y" {
			t.Errorf("token parameter %q; want the API key", tok)
		}
	}
	if problems, _ := log.snapshot(); len(problems) > 0 {
		t.Logf("page problems (expected: the dropped socket): %q", problems)
	}
}
