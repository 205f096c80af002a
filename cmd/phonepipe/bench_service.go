package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/domain"
)

// benchService is a `phonepipe serve` child process under measurement.
type benchService struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

var benchServingLine = regexp.MustCompile(`serving (http://\S+)`)

// benchStart runs `exe serve` on dataDir with extra flags, logs to
// logPath, and waits until the service reports ready.
func benchStart(ctx context.Context, exe, dataDir, logPath string, extra []string) (*benchService, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create service log: %w", err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	cmd := exec.Command(exe, args...)
	cmd.Env = benchChildEnv()
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("service stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	s := &benchService{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := benchServingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(s.done)
	}()
	select {
	case s.url = <-urlc:
	case <-s.done:
		return nil, fmt.Errorf("service exited before serving: %w%s", s.waitErr, s.logTail())
	case <-time.After(time.Minute):
		s.kill()
		return nil, fmt.Errorf("service printed no serving line within a minute%s", s.logTail())
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
	if err := s.client().waitReady(ctx, time.Minute); err != nil {
		s.kill()
		return nil, fmt.Errorf("%w%s", err, s.logTail())
	}
	return s, nil
}

// benchChildEnv is this process's environment without PHONEPIPE_*
// variables: the service gets its configuration from its flags only.
func benchChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PHONEPIPE_") {
			env = append(env, kv)
		}
	}
	return env
}

func (s *benchService) pid() int { return s.cmd.Process.Pid }

func (s *benchService) client() benchClient {
	return benchClient{base: s.url, hc: &http.Client{Timeout: 5 * time.Minute}, poll: 50 * time.Millisecond}
}

// stop asks the service to stop gracefully (SIGINT) and kills it if it
// has not within a minute.
func (s *benchService) stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		s.kill()
		return fmt.Errorf("interrupt service: %w", err)
	}
	select {
	case <-s.done:
		if s.waitErr != nil {
			return fmt.Errorf("service stopped with %w%s", s.waitErr, s.logTail())
		}
		return nil
	case <-time.After(time.Minute):
		s.kill()
		return fmt.Errorf("service did not stop within a minute of SIGINT%s", s.logTail())
	}
}

// kill ends the service at once and waits for it to be gone.
func (s *benchService) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// logTail returns the last lines of the service's log, for error messages.
func (s *benchService) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return "\nlast lines of " + s.logPath + ":\n" + strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// benchClient talks to the service's API.
type benchClient struct {
	base string
	hc   *http.Client
	poll time.Duration
}

// waitReady polls /readyz until it answers 200.
func (c benchClient) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("readyz: %w", err)
		}
		resp, err := c.hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service not ready within %s (last: %v)", timeout, err)
		}
		if err := benchSleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// submit uploads a CSV list and returns the new import's id once the
// service has answered 202.
func (c benchClient) submit(ctx context.Context, body io.Reader, size int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/imports", body)
	if err != nil {
		return "", fmt.Errorf("submit import: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "text/csv")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("submit import: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("submit import: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("submit import: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var acc struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &acc); err != nil || acc.ID == "" {
		return "", fmt.Errorf("submit import: answer %q has no id: %w", data, err)
	}
	return acc.ID, nil
}

// submitFile uploads the CSV file at path.
func (c benchClient) submitFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open list: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("open list: %w", err)
	}
	return c.submit(ctx, f, st.Size())
}

// status returns the import's current state.
func (c benchClient) status(ctx context.Context, id string) (domain.ImportSummary, error) {
	var im domain.ImportSummary
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/imports/"+id, nil)
	if err != nil {
		return im, fmt.Errorf("get import %s: %w", id, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return im, fmt.Errorf("get import %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return im, fmt.Errorf("get import %s: %s: %s", id, resp.Status, bytes.TrimSpace(data))
	}
	if err := json.NewDecoder(resp.Body).Decode(&im); err != nil {
		return im, fmt.Errorf("get import %s: %w", id, err)
	}
	return im, nil
}

// errBenchTimeout is returned when an import does not complete in time.
var errBenchTimeout = errors.New("import did not complete in time")

// waitCompleted polls the import until it is completed and returns its
// final state and when the poll saw it completed.
func (c benchClient) waitCompleted(ctx context.Context, id string, timeout time.Duration) (domain.ImportSummary, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		im, err := c.status(ctx, id)
		now := time.Now()
		if err != nil {
			return im, now, err
		}
		if im.Status == domain.StatusCompleted {
			return im, now, nil
		}
		if now.After(deadline) {
			return im, now, fmt.Errorf("import %s: %d of %d rows after %s: %w", id, im.Processed, im.Total, timeout, errBenchTimeout)
		}
		if err := benchSleep(ctx, c.poll); err != nil {
			return im, now, err
		}
	}
}

// benchSleep waits d or until ctx is done.
func benchSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
