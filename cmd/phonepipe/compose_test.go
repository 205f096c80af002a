package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// serveFlags lists the flags of `phonepipe serve`, read from its own help.
func serveFlags(t *testing.T) []string {
	t.Helper()
	var help bytes.Buffer
	err := run(context.Background(), []string{"serve", "-h"}, io.Discard, &help, func(string) (string, bool) { return "", false })
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("serve -h: %v", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1) {
		names = append(names, m[1])
	}
	if !slices.Contains(names, "backend") || !slices.Contains(names, "kafka-brokers") {
		t.Fatalf("unexpected serve help:\n%s", help.String())
	}
	return names
}

// TestComposeFileMatchesTheBinary loads docker-compose.yml as Docker
// Compose would and checks every phonepipe service against the real flag
// set: its command and PHONEPIPE_* variables name existing flags, its
// configuration parses and validates as `phonepipe serve` would, and its
// ports and health check use the address it listens on.
func TestComposeFileMatchesTheBinary(t *testing.T) {
	flags := serveFlags(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("phonepipe", true) })
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	var roles []string
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue // postgres, kafka
		}
		t.Run(name, func(t *testing.T) {
			cfgRoles := checkService(t, svc, flags)
			n := 1
			if svc.Deploy != nil && svc.Deploy.Replicas != nil {
				n = *svc.Deploy.Replicas
			}
			for range n {
				roles = append(roles, cfgRoles...)
			}
		})
	}
	for _, want := range []string{"api", "split", "validate", "project", "aggregate", "notify"} {
		if !slices.Contains(roles, want) {
			t.Errorf("no service runs role %s", want)
		}
	}
	if c := strings.Count(strings.Join(roles, ","), "validate"); c < 2 {
		t.Errorf("%d validate processes, want at least 2", c)
	}
}

// checkService checks one phonepipe service and returns its roles.
func checkService(t *testing.T, svc types.ServiceConfig, flags []string) []string {
	t.Helper()
	cmd := []string(svc.Command)
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("command %q does not run serve", cmd)
	}
	for _, arg := range cmd[1:] {
		if name, ok := strings.CutPrefix(arg, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !slices.Contains(flags, name) {
				t.Errorf("command uses --%s, which serve does not have", name)
			}
		}
	}
	env := map[string]string{}
	for k, v := range svc.Environment {
		if !strings.HasPrefix(k, "PHONEPIPE_") {
			continue
		}
		if !slices.ContainsFunc(flags, func(f string) bool { return envName(f) == k }) {
			t.Errorf("environment sets %s, the twin of no serve flag", k)
		}
		if v != nil {
			env[k] = *v
		}
	}
	cfg, err := serveConfig(cmd[1:], io.Discard, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("serve would reject this service: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid configuration: %v", err)
	}
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatalf("addr %q: %v", cfg.Addr, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Addr); host != "0.0.0.0" && host != "" {
		t.Errorf("listens on %s: unreachable from outside its container", cfg.Addr)
	}
	for _, p := range svc.Ports {
		if strconv.Itoa(int(p.Target)) != port {
			t.Errorf("publishes container port %d, but serves on %s", p.Target, port)
		}
	}
	if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
		t.Fatal("no health check")
	}
	probe := strings.Join(svc.HealthCheck.Test, " ")
	if !strings.Contains(probe, "127.0.0.1:"+port+"/readyz") && !strings.Contains(probe, "127.0.0.1:"+port+"/healthz") {
		t.Errorf("health check %q does not probe /readyz or /healthz on port %s", probe, port)
	}
	return cfg.Roles
}
