// Command phonepipe imports phone-number lists and turns them into clean,
// enriched, queryable data. Run `phonepipe serve` for the service; see the
// README for the other commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "phonepipe:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `usage: phonepipe <command> [flags]

commands:
  serve                 run the service (every role on the embedded backend by default)
  import FILE           submit a CSV/JSON file to a running server
  replay                rebuild projections from the event log (--projection NAME... or --all)
  projections checksum  print NAME SHA256 of every projection's canonical content
  dlq list|requeue ID   inspect the poison queue; put a message back on its topic
  version               print version, commit and phone metadata version
  bench                 measure import throughput, ack latency and memory on this machine

Run 'phonepipe <command> -h' for the flags of a command. Every flag has an
environment twin: --some-flag ⇄ PHONEPIPE_SOME_FLAG (flags win).
`

// run dispatches a command line; it is main without the process around it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr, env)
	case "import":
		return importFile(ctx, rest, stdout, stderr, env)
	case "replay":
		return replay(ctx, rest, stdout, stderr, env)
	case "projections":
		return projectionsCmd(ctx, rest, stdout, stderr, env)
	case "dlq":
		return dlq(ctx, rest, stdout, stderr, env)
	case "version":
		return version(stdout)
	case "bench":
		return bench(ctx, rest, stdout, stderr, env)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q", cmd)}
	}
}
