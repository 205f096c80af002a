package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func importFile(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		region, webhook, server, apiKey string
		wait, watch                     bool
		reconnectTimeout                time.Duration
	)
	fs.StringVar(&region, "region", "", "default region for rows without one (ISO 3166-1 alpha-2)")
	fs.StringVar(&webhook, "webhook", "", "URL that receives import.completed")
	fs.StringVar(&server, "server", "http://127.0.0.1:8080", "base URL of a running phonepipe")
	fs.StringVar(&apiKey, "api-key", "", "API key, when the server has keys configured")
	fs.BoolVar(&wait, "wait", false, "poll until the import completes and print its summary")
	fs.BoolVar(&watch, "watch", false, "show a live progress bar on stderr until the import completes, then print its summary")
	fs.DurationVar(&reconnectTimeout, "reconnect-timeout", defaultReconnectTimeout,
		"with --watch, how long to keep reconnecting a lost progress connection before giving up")
	// Flags may follow the file name.
	if err := parseWithEnv(fs, reorderFlags(args), env); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New("import needs exactly one FILE")}
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	contentType := "text/csv"
	if strings.EqualFold(filepath.Ext(path), ".json") {
		contentType = "application/json"
	}
	q := url.Values{}
	if region != "" {
		q.Set("default_region", region)
	}
	if webhook != "" {
		q.Set("webhook_url", webhook)
	}
	target := strings.TrimRight(server, "/") + "/v1/imports"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, f)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("upload to %s: %w", server, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upload %s: %w", path, newAPIError(resp, body))
	}
	var acc struct {
		ID    string `json:"id"`
		Total int    `json:"total"`
	}
	if err := json.Unmarshal(body, &acc); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	fmt.Fprintf(stdout, "accepted import %s with %d rows\n", acc.ID, acc.Total)
	switch {
	case watch:
		w := newWatcher(server, apiKey, acc.ID)
		w.reconnectTimeout = reconnectTimeout
		return watchImport(ctx, w, acc.Total, stdout, newProgressBar(stderr, env))
	case wait:
		return pollUntilComplete(ctx, server, apiKey, acc.ID, stdout)
	}
	return nil
}

// watchImport follows the import with w, drawing bar, and prints the final
// counts to stdout once it completes.
func watchImport(ctx context.Context, w *watcher, total int, stdout io.Writer, bar *progressBar) error {
	bar.update(importState{ID: w.id, Status: "accepted", Total: total})
	w.onUpdate = bar.update
	w.onDrop = func(err error, retryIn time.Duration) {
		bar.note("phonepipe: %v; reconnecting in %s", err, retryIn.Round(time.Millisecond))
	}
	final, err := w.watch(ctx)
	bar.endLine()
	if err != nil {
		return err
	}
	printSummary(stdout, w.server, final)
	return nil
}

// printSummary prints an import's final counts and where its results are.
func printSummary(out io.Writer, server string, s importState) {
	fmt.Fprintf(out, "import %s %s: %d rows\n", s.ID, s.Status, s.Total)
	for _, c := range []struct {
		name string
		n    int
	}{{"valid", s.Valid}, {"invalid", s.Invalid}, {"duplicates", s.Duplicates}, {"failed", s.Failed}} {
		fmt.Fprintf(out, "  %-11s %d\n", c.name, c.n)
	}
	results := strings.TrimRight(server, "/") + "/v1/imports/" + url.PathEscape(s.ID) + "/results"
	fmt.Fprintf(out, "results: %s?format=csv\n", results)
}

// pollUntilComplete polls the import until it completes and prints it.
func pollUntilComplete(ctx context.Context, server, apiKey, id string, stdout io.Writer) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+"/v1/imports/"+id, nil)
		if err != nil {
			return err
		}
		if apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("poll import %s: %w", id, err)
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			return fmt.Errorf("poll import %s: %w", id, newAPIError(resp, body))
		}
		var sum map[string]any
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sum)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("decode import %s: %w", id, err)
		}
		if sum["status"] == "completed" {
			out, _ := json.MarshalIndent(sum, "", "  ")
			fmt.Fprintln(stdout, string(out))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// reorderFlags moves flags before positional arguments so that
// `import FILE --region HU` works like `import --region HU FILE`.
func reorderFlags(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func isBoolFlag(a string) bool {
	name := strings.TrimLeft(a, "-")
	return name == "wait" || name == "watch" || name == "h" || name == "help"
}
