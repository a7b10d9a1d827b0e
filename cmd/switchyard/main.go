// Command switchyard is Switchyard's single binary: the server, the
// benchmark, the migrator and the CLI client of the HTTP API (jobs, queues,
// workers, tenants, users, keys, the audit log, login). It is the only place that
// reads flags, environment and files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"audit", "read a tenant's audit log: who did what, when, with what result", runAudit},
		{"bench", "measure throughput, latency and idle cost on a database", runBench},
		{"endpoints", "create, list and delete outbound webhook endpoints; attempts, redelivery", runEndpoints},
		{"events", "send CloudEvents, list and inspect recorded events and their dispatch", runEvents},
		{"jobs", "enqueue, get, list, cancel, retry and delete jobs on a server", runJobs},
		{"keys", "create, list, inspect and revoke a tenant's API keys", runKeys},
		{"login", "log in as a user and save the session for later commands", runLogin},
		{"logout", "end the saved session and delete it", runLogout},
		{"migrate", "apply pending database migrations", runMigrate},
		{"queues", "list, pause, resume and configure queues on a server", runQueues},
		{"rules", "create, list, inspect, replace and delete event rules", runRules},
		{"serve", "run the server: HTTP API and workers", runServe},
		{"sources", "create, list, inspect and delete inbound webhook sources", runSources},
		{"tenants", "create, list, inspect and change tenants", runTenants},
		{"users", "add, list, change and remove a tenant's members", runUsers},
		{"version", "print the version", runVersion},
		{"whoami", "show the credential in use, its tenant and role", runWhoami},
		{"workers", "list a tenant's worker nodes, online and offline", runWorkers},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `Switchyard: durable jobs, events and workflows in one binary.

Usage: switchyard <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Every flag has an environment twin SWITCHYARD_<FLAG> (dashes become
underscores), except the few that --help marks as command line only; a
flag on the command line wins over the environment.

The client commands (audit, endpoints, events, jobs, keys, queues, rules,
sources, tenants, users, whoami, workers) talk to --server (SWITCHYARD_URL, default http://localhost:8080)
with the first credential found: --api-key (SWITCHYARD_API_KEY); --key-file
when given; the session 'switchyard login' saved for that server; the key
file switchyard.key in the working directory, which 'switchyard serve'
writes at first start. --tenant (SWITCHYARD_TENANT) chooses the tenant they
act in.

Run 'switchyard <command> --help' for a command's flags.
`)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		default:
			fmt.Fprintf(stderr, "switchyard %s: %v\n", c.name, err)
			var ec interface{ ExitCode() int } // usage errors exit 2
			if errors.As(err, &ec) {
				return ec.ExitCode()
			}
			return 1
		}
	}
	fmt.Fprintf(stderr, "switchyard: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from its SWITCHYARD_<FLAG> environment twin.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || commandLineOnly(f) {
			return
		}
		env := "SWITCHYARD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	return errors.Join(errs...)
}

// cmdLineOnly wraps the value of a flag that has no environment twin:
// one whose SWITCHYARD_<FLAG> name is already serve's setting
// (SWITCHYARD_RATE_LIMIT), or one that grants power and must never come
// from an environment left set (--instance-admin).
type cmdLineOnly struct{ flag.Value }

func (c *cmdLineOnly) String() string {
	if c == nil || c.Value == nil {
		return ""
	}
	return c.Value.String()
}

// IsBoolFlag keeps a wrapped boolean flag one that takes no value.
func (c *cmdLineOnly) IsBoolFlag() bool {
	b, ok := c.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// onlyOnCommandLine takes the environment twins of the named flags away.
func onlyOnCommandLine(fs *flag.FlagSet, names ...string) {
	for _, n := range names {
		f := fs.Lookup(n)
		f.Value = &cmdLineOnly{f.Value}
	}
}

func commandLineOnly(f *flag.Flag) bool {
	_, ok := f.Value.(*cmdLineOnly)
	return ok
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: switchyard %s\n\n%s\n\nFlags (each also read from SWITCHYARD_<FLAG>):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// serverGCPercent is the Go GC target serve (and bench, which measures what
// serve does) run with unless GOGC is set. A server's live heap is small
// (tens of MB) and churns fast: at the default 100 the collector ran every
// few tens of milliseconds under HTTP ingest, and fewer collections gave
// 15-25 % more requests/s and a lower p99 for ~25 MB more memory (bench
// --mode ingest with GOGC=100 vs 400, interleaved runs).
const serverGCPercent = 400

// tuneGC applies serverGCPercent unless the operator chose with GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Prints the version.", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "switchyard %s\n", version)
	return nil
}
