package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// helpCommands returns the commands that --help lists.
func helpCommands(t *testing.T) []string {
	t.Helper()
	out, _, err := runCmd(t, nil, "--help")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z-]+) +\S`).FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("--help lists no commands:\n%s", out)
	}
	return names
}

// readmeCommands returns the commands of the README's Commands section.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Commands\n")
	if !ok {
		t.Fatal("the README has no Commands section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^commongrounds \[?([a-z-]+)`).FindAllStringSubmatch(block, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatal("the README's Commands section lists no commands")
	}
	return names
}

// TestHelpAgreesWithREADME: every command --help lists is in the README's list of commands,
// and every command there is in --help.
func TestHelpAgreesWithREADME(t *testing.T) {
	t.Parallel()
	help, readme := helpCommands(t), readmeCommands(t)
	for _, c := range help {
		if !slices.Contains(readme, c) {
			t.Errorf("--help lists %s, the README does not", c)
		}
	}
	for _, c := range readme {
		if !slices.Contains(help, c) {
			t.Errorf("the README lists %s, --help does not", c)
		}
	}
}

// TestCommandHelp: each command's --help (and help COMMAND) prints its usage and flags, and
// does nothing else: no database is opened (the environment names none that exists).
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
	flags := map[string][]string{
		"sync-classes":  {"-term", "-subject"},
		"loadtest-seed": {"-users", "-rooms", "-out"},
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			out, _, err := runCmd(t, env, args...)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if c.name == "help" {
				continue
			}
			if !strings.Contains(out, "usage: commongrounds "+c.name) {
				t.Errorf("%v: no usage line:\n%s", args, out)
			}
			for _, f := range flags[c.name] {
				if !strings.Contains(out, f) {
					t.Errorf("%v: flag %s missing:\n%s", args, f, out)
				}
			}
		}
	}
	if _, _, err := runCmd(t, env, "frobnicate"); err == nil || !strings.Contains(err.Error(), "--help") {
		t.Fatalf("unknown command: err=%v, want one pointing at --help", err)
	}
}
