package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/switchyard-dev/switchyard/client"
)

const rulesDescription = `Creates, lists, prints, replaces and deletes the rules of a tenant (--tenant,
or the credential's own). A rule routes events: when an event's type
matches one of its types and its filter holds, its actions run, enqueueing
jobs or publishing the event to topics. Changing rules needs the admin
role.`

func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "rules", rulesDescription, []subcommand{
		{"create", "create a rule from a JSON file", rulesCreate},
		{"list", "list the tenant's rules", rulesList},
		{"get", "print one rule", rulesGet},
		{"replace", "replace a rule with a JSON file's", rulesReplace},
		{"delete", "delete a rule", rulesDelete},
	}, args, stdout, stderr)
}

const ruleFileHelp = `The file (- for stdin) holds the rule as the API takes it:

  {"name": "thumbnails", "types": ["image.*"],
   "filter": "data.size > 1000",
   "actions": [{"type": "enqueue", "kind": "thumbnail", "queue": "media",
                "args": "{\"url\": data.url, \"user\": subject}"}]}

"enabled" defaults to true.`

// readRule reads a rule request from file, refusing unknown fields.
func readRule(cf *clientFlags, file string) (client.RuleRequest, error) {
	var req client.RuleRequest
	if file == "" {
		return req, cf.usageError("--file is required")
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return req, fmt.Errorf("--file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("--file %s: not a rule: %w", file, err)
	}
	return req, nil
}

func rulesCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules create --file FILE [flags]", "", stderr)
	setUsage(fs, "\nCreates a rule and prints it. "+ruleFileHelp+"\n\nExample:\n  switchyard rules create --file thumbnails.json")
	cf := newClientFlags(fs, stdout)
	var file string
	fs.StringVar(&file, "file", "", "the rule in JSON, from this `file` (- for stdin)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	req, err := readRule(cf, file)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	r, err := c.CreateRule(ctx, req)
	if err != nil {
		return cf.explain(err)
	}
	return printRuleOut(stdout, r, cf.jsonOut)
}

func rulesReplace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules replace ID --file FILE [flags]", "", stderr)
	setUsage(fs, "\nReplaces the rule with this id, whole, and prints it. "+ruleFileHelp)
	cf := newClientFlags(fs, stdout)
	var file string
	fs.StringVar(&file, "file", "", "the rule in JSON, from this `file` (- for stdin)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "rule ID")
	if err != nil {
		return err
	}
	req, err := readRule(cf, file)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	r, err := c.ReplaceRule(ctx, id, req)
	if err != nil {
		return cf.explain(err)
	}
	return printRuleOut(stdout, r, cf.jsonOut)
}

func rulesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules list [flags]", "", stderr)
	setUsage(fs, `
Lists the tenant's rules in id order, disabled ones included. One page is
printed; when there are more, the cursor for the next one goes to stderr
("next cursor: …"). --all follows the cursors to the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "rules")
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(listPages(cf, pf, stdout, stderr, "ID\tNAME\tENABLED\tTYPES\tACTIONS\tUPDATED",
		func(p client.ListParams) (*client.Page[client.Rule], error) {
			return c.ListRules(ctx, p)
		},
		func(r *client.Rule) json.RawMessage { return r.Raw },
		func(w io.Writer, r *client.Rule) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, yesNo(r.Enabled), strings.Join(r.Types, ","),
				ruleActions(r), compactTime(r.UpdatedAt))
			return err
		}))
}

func rulesGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ruleAction(ctx, "get", "\nPrints the rule with this id.", args, stdout, stderr, (*client.Client).GetRule)
}

func rulesDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ruleAction(ctx, "delete", "\nDeletes the rule with this id: events from now on no longer see it.", args, stdout, stderr,
		func(c *client.Client, ctx context.Context, id string) (*client.Rule, error) {
			return nil, c.DeleteRule(ctx, id)
		})
}

// ruleAction runs a subcommand that takes one rule id and prints the rule
// the call returns, if any.
func ruleAction(ctx context.Context, verb, description string, args []string, stdout, stderr io.Writer,
	call func(*client.Client, context.Context, string) (*client.Rule, error)) error {
	fs := newFlagSet("rules "+verb+" ID [flags]", "", stderr)
	setUsage(fs, description)
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "rule ID")
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	r, err := call(c, ctx, id)
	if err != nil {
		return cf.explain(err)
	}
	if r == nil {
		if !cf.jsonOut {
			fmt.Fprintf(stdout, "rule %s deleted\n", id)
		}
		return nil
	}
	return printRuleOut(stdout, r, cf.jsonOut)
}

// ruleActions sums up a rule's actions: "enqueue noop→img, publish→topic".
func ruleActions(r *client.Rule) string {
	var out []string
	for _, a := range r.Actions {
		switch a.Type {
		case "enqueue":
			q := a.Queue
			if q == "" {
				q = "default"
			}
			out = append(out, "enqueue "+a.Kind+"→"+q)
		case "publish":
			out = append(out, "publish→"+a.Topic)
		default:
			out = append(out, a.Type)
		}
	}
	return orDash(strings.Join(out, ", "))
}

func printRuleOut(w io.Writer, r *client.Rule, asJSON bool) error {
	if asJSON {
		return printJSON(w, r.Raw, r)
	}
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", r.ID)
	row("name", r.Name)
	row("enabled", yesNo(r.Enabled))
	row("types", strings.Join(r.Types, ", "))
	row("filter", orDash(r.Filter))
	row("actions", ruleActions(r))
	for i, a := range r.Actions {
		if a.Args != "" {
			row(fmt.Sprintf("actions[%d].args", i), a.Args)
		}
	}
	row("created_at", fullTime(&r.CreatedAt))
	row("updated_at", fullTime(&r.UpdatedAt))
	return tw.Flush()
}
