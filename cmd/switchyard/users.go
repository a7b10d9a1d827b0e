package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/client"
)

const usersDescription = `Adds, lists, changes and removes the members of a tenant (--tenant, or
the credential's own). Roles, weakest first: viewer, operator, admin,
owner. Managing members needs the admin role, and no one grants more than
their own role.`

func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "users", usersDescription, []subcommand{
		{"add", "add a member, creating the user if the email is new", usersAdd},
		{"list", "list the tenant's members", usersList},
		{"get", "print one member", usersGet},
		{"set-role", "change a member's role", usersSetRole},
		{"set-password", "set a user's password", usersSetPassword},
		{"remove", "remove a member from the tenant", usersRemove},
	}, args, stdout, stderr)
}

const tenantRoles = "viewer, operator, admin or owner"

func usersAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("users add EMAIL --role ROLE [flags]", "", stderr)
	setUsage(fs, `
Adds the user with this email to the tenant with a role and prints them. A
new email needs a password of at least 12 characters, read from stdin with
--password-stdin or from SWITCHYARD_PASSWORD; a user who exists already
joins with their own password, and none is given.

Example:
  printf '%s\n' "$NEW_PASSWORD" | switchyard users add ana@example.com --role admin --password-stdin`)
	cf := newClientFlags(fs, stdout)
	var (
		req       client.UserRequest
		fromStdin bool
	)
	fs.StringVar(&req.Role, "role", "", "the member's `role` in the tenant: "+tenantRoles)
	fs.BoolVar(&req.InstanceAdmin, "instance-admin", false, "make a new user an instance administrator (needs one)")
	onlyOnCommandLine(fs, "instance-admin")
	passwordFlag(cf, &fromStdin)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if req.Email, err = oneID(cf, pos, "EMAIL"); err != nil {
		return err
	}
	if req.Role == "" {
		return cf.usageError("--role is required: %s", tenantRoles)
	}
	if req.Password, _, err = readPassword(fromStdin); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	u, err := c.CreateUser(ctx, req)
	if err != nil {
		return cf.explain(err)
	}
	return printUser(stdout, u, cf.jsonOut)
}

func usersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("users list [flags]", "", stderr)
	setUsage(fs, `
Lists the tenant's members in id order with their roles. One page is
printed; when there are more, the cursor for the next one goes to stderr
("next cursor: …"). --all follows the cursors to the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "members")
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(listPages(cf, pf, stdout, stderr, "ID\tEMAIL\tROLE\tINSTANCE_ADMIN\tCREATED",
		func(p client.ListParams) (*client.Page[client.User], error) {
			return c.ListUsers(ctx, p)
		},
		func(u *client.User) json.RawMessage { return u.Raw },
		func(w io.Writer, u *client.User) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, orDash(u.Role), yesNo(u.InstanceAdmin), compactTime(u.CreatedAt))
			return err
		}))
}

func usersGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return userAction(ctx, "get ID", "Prints the member with this user id. Members may read themselves; others need the admin role.",
		args, stdout, stderr, nil, (*client.Client).GetUser)
}

func usersSetRole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("users set-role ID ROLE [flags]", "", stderr)
	setUsage(fs, `
Changes the member's role in the tenant to ROLE (`+tenantRoles+`) and
prints them. Needs the admin role; granting or taking away owner needs
owner.`)
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cf.usageError("want a user ID and a ROLE, got %d arguments", len(pos))
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	role := pos[1]
	u, err := c.UpdateUser(ctx, pos[0], client.UserUpdate{Role: &role})
	if err != nil {
		return cf.explain(err)
	}
	return printUser(stdout, u, cf.jsonOut)
}

func usersSetPassword(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var fromStdin bool
	var password string
	define := func(cf *clientFlags) func() error {
		passwordFlag(cf, &fromStdin)
		return func() error {
			p, ok, err := readPassword(fromStdin)
			if err != nil {
				return err
			}
			if !ok {
				return cf.usageError("no password: pipe it in with --password-stdin, or set %s", passwordEnv)
			}
			password = p
			return nil
		}
	}
	return userAction(ctx, "set-password ID --password-stdin", `
Sets the user's password (at least 12 characters), read from stdin with
--password-stdin or from SWITCHYARD_PASSWORD, and ends all their sessions.
Users may set their own; others' need an instance administrator.`,
		args, stdout, stderr, define, func(c *client.Client, ctx context.Context, id string) (*client.User, error) {
			return c.UpdateUser(ctx, id, client.UserUpdate{Password: &password})
		})
}

func usersRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return userAction(ctx, "remove ID", "Removes the user from the tenant; they keep their other tenants. Needs the admin role.",
		args, stdout, stderr, nil, func(c *client.Client, ctx context.Context, id string) (*client.User, error) {
			return nil, c.DeleteUser(ctx, id)
		})
}

// userAction runs a subcommand that takes one user id and prints the user
// the call returns, if any. define, if not nil, adds flags and returns a
// check to run once they are parsed.
func userAction(ctx context.Context, synopsis, description string, args []string, stdout, stderr io.Writer,
	define func(*clientFlags) func() error,
	call func(*client.Client, context.Context, string) (*client.User, error)) error {
	fs := newFlagSet("users "+synopsis+" [flags]", "", stderr)
	setUsage(fs, description)
	cf := newClientFlags(fs, stdout)
	var check func() error
	if define != nil {
		check = define(cf)
	}
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "user ID")
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	u, err := call(c, ctx, id)
	if err != nil {
		return cf.explain(err)
	}
	if u == nil {
		if !cf.jsonOut {
			fmt.Fprintf(stdout, "user %s removed from the tenant\n", id)
		}
		return nil
	}
	return printUser(stdout, u, cf.jsonOut)
}

func printUser(w io.Writer, u *client.User, asJSON bool) error {
	if asJSON {
		return printJSON(w, u.Raw, u)
	}
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", u.ID)
	row("email", u.Email)
	row("role", orDash(u.Role))
	row("instance_admin", yesNo(u.InstanceAdmin))
	row("created_at", fullTime(&u.CreatedAt))
	return tw.Flush()
}
