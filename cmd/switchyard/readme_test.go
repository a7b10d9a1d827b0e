package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

// TestReadmeDocumentsEveryServeSetting keeps the README's configuration
// table and serve's flags in step: each flag has a row naming its flag,
// environment variable and file key.
func TestReadmeDocumentsEveryServeSetting(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `--") {
			name := strings.TrimPrefix(strings.SplitN(line, "`", 3)[1], "--")
			rows[name] = line
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serveFlags(fs, &serveSettings{})
	fs.VisitAll(func(f *flag.Flag) {
		row, ok := rows[f.Name]
		if !ok {
			t.Errorf("README's configuration table has no row for --%s", f.Name)
			return
		}
		if !strings.Contains(row, "`"+envName(f.Name)+"`") {
			t.Errorf("README row for --%s does not name %s", f.Name, envName(f.Name))
		}
		if key := strings.ReplaceAll(f.Name, "-", "_"); f.Name != "config" && !strings.Contains(row, "`"+key+"`") {
			t.Errorf("README row for --%s does not name the file key %s", f.Name, key)
		}
	})
}
