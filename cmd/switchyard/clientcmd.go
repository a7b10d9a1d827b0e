package main

// The plumbing shared by the client subcommands (jobs, queues, events,
// rules, tenants, users, keys, audit, whoami): the flags every one of them
// takes, finding the credential (an API key or the session 'switchyard
// login' saved), flags after positional arguments, subcommand groups, and
// turning API errors into one line.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

// defaultKeyFile is where `switchyard serve` writes the admin key it makes
// at first start, so a CLI run next to the server needs no flags.
const defaultKeyFile = "switchyard.key"

// clientFlags are the flags every client subcommand takes.
type clientFlags struct {
	fs          *flag.FlagSet
	stdout      io.Writer // where --help goes
	server      string
	apiKey      string
	keyFile     string
	tenant      string
	sessionFile string
	jsonOut     bool
	httpTimeout time.Duration

	hc        *http.Client // made by client(); closed by close()
	keySource string       // where the key sent came from, for hints; "" for none
	session   *sessionAuth // the saved session in use, if any
}

// envNames overrides the SWITCHYARD_<FLAG> name shown in help for flags
// with more than one environment variable.
var envNames = map[string]string{
	"server": "SWITCHYARD_URL or SWITCHYARD_SERVER",
}

func newClientFlags(fs *flag.FlagSet, stdout io.Writer) *clientFlags {
	cf := &clientFlags{fs: fs, stdout: stdout}
	fs.StringVar(&cf.server, "server", client.DefaultBaseURL, "the server's base `URL`")
	fs.StringVar(&cf.apiKey, "api-key", "", "API `key` to authenticate with (default: read from --key-file)")
	fs.StringVar(&cf.keyFile, "key-file", defaultKeyFile, "`file` holding the API key, as 'switchyard serve' writes it at first start;\nignored when --api-key is given, skipped when missing unless set explicitly;\na saved session (switchyard login) wins over the default key file")
	fs.StringVar(&cf.tenant, "tenant", "", "act in the tenant with this `id` (sent as the Switchyard-Tenant header);\ndefault: the API key's tenant, the user's only tenant, or the tenant given at login")
	fs.StringVar(&cf.sessionFile, "session-file", "", "`file` where 'switchyard login' keeps the session, used when no API key is given\n(default: "+displaySessionPath()+")")
	fs.BoolVar(&cf.jsonOut, "json", false, "print the server's JSON instead of a table, one object per line")
	fs.DurationVar(&cf.httpTimeout, "http-timeout", 30*time.Second, "bound on each HTTP request to the server")
	return cf
}

// parse parses args, which may mix flags and positional arguments, and
// returns the positional ones. Usage errors say how to get help.
func (cf *clientFlags) parse(args []string) ([]string, error) {
	flags, positional, help := splitArgs(cf.fs, args)
	if help {
		// Asked for, help is the output: stdout.
		cf.fs.SetOutput(cf.stdout)
		cf.fs.Usage()
		return nil, flag.ErrHelp
	}
	if err := parseFlags(cf.fs, flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErr{err}
	}
	// DESIGN.md names SWITCHYARD_URL for --server; SWITCHYARD_SERVER, its
	// generic twin, was applied by parseFlags and yields to it.
	if !setOnCommandLine(cf.fs, "server") {
		if v, ok := os.LookupEnv("SWITCHYARD_URL"); ok && v != "" {
			cf.server = v
		}
	}
	if cf.httpTimeout <= 0 {
		return nil, cf.usageError("--http-timeout must be positive")
	}
	return positional, nil
}

// usageError is an error about the command line, pointing at --help.
func (cf *clientFlags) usageError(format string, a ...any) error {
	return usageErr{fmt.Errorf("%s (see 'switchyard %s --help')", fmt.Sprintf(format, a...), commandName(cf.fs))}
}

// usageErr marks an error in the command line, as opposed to one from the
// server or the network. ExitCode lets run() exit 2 for it, the convention
// for usage errors, while other errors exit 1.
type usageErr struct{ err error }

func (e usageErr) Error() string { return e.err.Error() }
func (e usageErr) Unwrap() error { return e.err }
func (e usageErr) ExitCode() int { return 2 }

// commandName is the subcommand part of a flag set's name ("jobs get" of
// "jobs get ID").
func commandName(fs *flag.FlagSet) string {
	words := strings.Fields(fs.Name())
	if len(words) > 2 {
		words = words[:2]
	}
	return strings.Join(words, " ")
}

// client builds the API client from the flags. The credential is the
// first of: --api-key (or SWITCHYARD_API_KEY); the key file when named
// explicitly; the session 'switchyard login' saved, when it is for the
// server asked for (or no server was asked for); the default key file.
func (cf *clientFlags) client() (*client.Client, error) {
	key, err := cf.key()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: cf.httpTimeout}
	tenant := cf.tenant
	if cf.session != nil {
		hc.Transport = cf.session
		cf.server = cf.session.server()
		if tenant == "" {
			tenant = cf.session.tenant()
		}
	}
	c, err := client.New(client.Config{
		BaseURL:    cf.server,
		APIKey:     key,
		Tenant:     tenant,
		HTTPClient: hc,
		UserAgent:  userAgent(),
	})
	if err != nil {
		return nil, usageErr{fmt.Errorf("--server: %w", err)}
	}
	cf.hc = hc
	return c, nil
}

func userAgent() string { return "switchyard-cli/" + version }

// serverGiven reports whether --server, SWITCHYARD_URL or SWITCHYARD_SERVER
// named the server.
func (cf *clientFlags) serverGiven() bool {
	if given(cf.fs, "server") {
		return true
	}
	v, ok := os.LookupEnv("SWITCHYARD_URL")
	return ok && v != ""
}

// close lets go of the connections client() opened: a command is one
// short-lived use, and run() may be called many times in one process.
func (cf *clientFlags) close() {
	if cf.hc != nil {
		cf.hc.CloseIdleConnections()
	}
}

// key returns --api-key, else the key in --key-file when named explicitly,
// else "" with cf.session set when a saved session applies, else the key in
// the default key file. A missing key file is an error only when it was
// named explicitly; otherwise no key is sent and the server's 401 explains.
func (cf *clientFlags) key() (string, error) {
	if cf.apiKey != "" {
		cf.keySource = "--api-key"
		if !setOnCommandLine(cf.fs, "api-key") {
			cf.keySource = "SWITCHYARD_API_KEY"
		}
		return cf.apiKey, nil
	}
	if !given(cf.fs, "key-file") {
		sa, err := cf.loadSession(false)
		if err != nil {
			return "", err
		}
		if sa != nil {
			cf.session = sa
			cf.keySource = "session"
			return "", nil
		}
	}
	if cf.keyFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(cf.keyFile)
	if errors.Is(err, fs.ErrNotExist) && !given(cf.fs, "key-file") {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read key file: %w", err)
	}
	// The key is the first line that is neither blank nor a # comment.
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cf.keySource = "key file " + cf.keyFile
			return line, nil
		}
	}
	return "", fmt.Errorf("key file %s holds no key", cf.keyFile)
}

// explain turns an error from the client into the line the user sees:
// "<message> (<code>, request <id>)" for the server's refusals, with a hint
// where one helps.
func (cf *clientFlags) explain(err error) error {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		msg := apiMessage(apiErr)
		if apiErr.Code == client.CodeInvalidArgument && strings.Contains(apiErr.Message, client.TenantHeader) {
			msg += "\nhint: choose the tenant with --tenant or SWITCHYARD_TENANT"
		}
		if apiErr.Code == client.CodeUnauthenticated {
			var sessErr *sessionError
			switch {
			case errors.As(err, &sessErr):
				msg = "the session saved in " + sessErr.path + " could not be renewed: " + msg +
					"\nhint: log in again with 'switchyard login EMAIL --password-stdin'"
			case cf.session != nil:
				msg += "\nhint: the credential sent came from the session in " + cf.session.path +
					"; log in again with 'switchyard login EMAIL --password-stdin', or give --api-key"
			case cf.keySource == "":
				why := "no --api-key or SWITCHYARD_API_KEY"
				if cf.keyFile != "" {
					why += ", and no key file " + cf.keyFile
				}
				msg += "\nhint: no API key was sent (" + why + "), and no session from 'switchyard login'"
			default:
				msg += "\nhint: the key sent came from " + cf.keySource
			}
		}
		return errors.New(msg)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w\nhint: is a server running at %s? Point --server or SWITCHYARD_URL at it", err, cf.server)
	}
	return err
}

// apiMessage is "<message> (<code>, request <id>)".
func apiMessage(e *client.Error) string {
	msg := e.Message + " (" + e.Code
	if e.RequestID != "" {
		msg += ", request " + e.RequestID
	}
	return msg + ")"
}

// setOnCommandLine reports whether the flag was given on the command line.
// parseFlags sets environment values through flag.Value, which fs.Visit
// does not see.
func setOnCommandLine(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// given reports whether the flag was set on the command line or by its
// environment twin.
func given(fs *flag.FlagSet, name string) bool {
	if setOnCommandLine(fs, name) {
		return true
	}
	if f := fs.Lookup(name); f != nil && commandLineOnly(f) {
		return false
	}
	_, ok := os.LookupEnv(envName(name))
	return ok
}

func envName(flagName string) string {
	return "SWITCHYARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// splitArgs separates flags from positional arguments so that flags may
// follow them ("jobs get 12 --json"); the flag package alone stops at the
// first positional one. fs tells which flags take a value. Everything after
// "--" is positional. help reports -h, -help or --help among the flags.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string, help bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			help = help || name == "h" || name == "help"
			continue // fs.Parse reports any other
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, positional, help
}

// setUsage replaces fs's usage text with the synopsis, the description and
// every flag with its environment variable.
func setUsage(fs *flag.FlagSet, description string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: switchyard %s\n\n%s\n", fs.Name(), strings.TrimSpace(description))
		own, common := []*flag.Flag{}, []*flag.Flag{}
		fs.VisitAll(func(f *flag.Flag) {
			if commonFlags[f.Name] {
				common = append(common, f)
			} else {
				own = append(own, f)
			}
		})
		if len(own) > 0 {
			fmt.Fprintln(w, "\nFlags:")
			printFlagHelp(w, own)
		}
		fmt.Fprintln(w, "\nCommon flags:")
		printFlagHelp(w, common)
		fmt.Fprintln(w, "\nFlags may come before or after the arguments; a flag wins over its environment variable.")
	}
}

// commonFlags are the flags newClientFlags defines.
var commonFlags = map[string]bool{
	"server": true, "api-key": true, "key-file": true, "tenant": true, "session-file": true, "json": true, "http-timeout": true,
}

func printFlagHelp(w io.Writer, flags []*flag.Flag) {
	for _, f := range flags {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		env := envNames[f.Name]
		if env == "" {
			env = envName(f.Name)
		}
		env = "env " + env
		if commandLineOnly(f) {
			env = "command line only (no environment variable)"
		}
		usage = strings.ReplaceAll(usage, "\n", "\n      ")
		fmt.Fprintf(w, "%s\n      %s\n      %s", line, usage, env)
		switch f.DefValue {
		case "", "0", "0s", "false":
		default:
			fmt.Fprintf(w, "; default %s", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}

// subcommand is one verb of a group such as `switchyard jobs`.
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// runGroup runs the subcommand args[0] of group.
func runGroup(ctx context.Context, group, description string, subs []subcommand, args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: switchyard %s <subcommand> [arguments] [flags]\n\n%s\n\nSubcommands:\n", group, description)
		for _, s := range subs {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'switchyard %s <subcommand> --help' for its arguments and flags.\n", group)
	}
	if len(args) == 0 {
		usage(stderr)
		return usageErr{errors.New("missing subcommand")}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	if strings.HasPrefix(args[0], "-") {
		return usageErr{fmt.Errorf("missing subcommand: it comes first, before any flag (switchyard %s %s …)", group, subs[0].name)}
	}
	return usageErr{fmt.Errorf("unknown subcommand %q", args[0])}
}

// printJSON writes raw JSON compacted on one line, or v encoded when raw is
// empty.
func printJSON(w io.Writer, raw json.RawMessage, v any) error {
	var buf bytes.Buffer
	if len(raw) > 0 && json.Compact(&buf, raw) == nil {
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// pageFlags are the paging flags of list subcommands.
type pageFlags struct {
	limit  int
	cursor string
	all    bool
}

func definePageFlags(fs *flag.FlagSet, what string) *pageFlags {
	p := &pageFlags{}
	fs.IntVar(&p.limit, "limit", 0, what+" per page, 1 to 1000 (default: the server's, 100)")
	fs.StringVar(&p.cursor, "cursor", "", "start at this `cursor`, printed by an earlier page")
	fs.BoolVar(&p.all, "all", false, "follow the cursors and list every one")
	return p
}

// listPages prints a list: a table under head with one row per item, or
// with --json each item's JSON on a line of its own. It prints one page;
// with --all it follows the cursors to the end, else it tells stderr the
// next cursor. A failure after some rows still prints those rows.
func listPages[T any](cf *clientFlags, p *pageFlags, stdout, stderr io.Writer, head string,
	fetch func(client.ListParams) (*client.Page[T], error), raw func(*T) json.RawMessage, row func(io.Writer, *T) error) error {
	tw := newTable(stdout)
	if !cf.jsonOut {
		fmt.Fprintln(tw, head)
	}
	n := 0
	err := func() error {
		lp := client.ListParams{Limit: p.limit, Cursor: p.cursor}
		seen := map[string]bool{}
		for {
			page, err := fetch(lp)
			if err != nil {
				return err
			}
			for i := range page.Items {
				item := &page.Items[i]
				if cf.jsonOut {
					err = printJSON(stdout, raw(item), item)
				} else {
					err = row(tw, item)
				}
				if err != nil {
					return err
				}
				n++
			}
			next := page.NextCursor
			if next == "" {
				return nil
			}
			if !p.all {
				fmt.Fprintf(stderr, "next cursor: %s\n", next)
				return nil
			}
			if seen[next] {
				return errors.New("the server repeated a cursor; stopping")
			}
			seen[next] = true
			lp.Cursor = next
		}
	}()
	if err == nil || n > 0 {
		if ferr := tw.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// parseNone parses the arguments of a subcommand that takes no positional
// ones, and connects; the caller defers cf.close.
func (cf *clientFlags) parseNone(args []string) (*client.Client, error) {
	pos, err := cf.parse(args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 0 {
		return nil, cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	return cf.client()
}

// oneID checks a subcommand got exactly one positional argument.
func oneID(cf *clientFlags, pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", cf.usageError("want exactly one %s, got %d arguments", what, len(pos))
	}
	return pos[0], nil
}

// yesNo is a boolean for tables.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func itoa(n int) string { return strconv.Itoa(n) }
