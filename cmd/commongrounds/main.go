// Command commongrounds is the Common Grounds server and its administrative commands.
//
//	commongrounds [serve]                      run the server (the default)
//	commongrounds migrate                      apply database migrations and exit
//	commongrounds sync-classes --term T [--subject S]
//	commongrounds import-classes FILE|DIR|- ...
//	commongrounds grant-moderator EMAIL        give a user the moderator role
//	commongrounds loadtest-seed --users N --rooms K --out FILE
//
// `commongrounds help` lists the commands, `commongrounds COMMAND --help` gives one's flags.
// Configuration comes from the environment; see the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "commongrounds: %v\n", oneLine(err))
		os.Exit(1)
	}
}

// oneLine returns the error's text on one line.
func oneLine(err error) string {
	b := []byte(err.Error())
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}

// command is one command of the binary, as --help lists it.
type command struct {
	name    string
	usage   string // the arguments after the name
	summary string // one line
}

// commands are every command, in the order --help lists them.
var commands = []command{
	{"serve", "", "run the server (the default command)"},
	{"migrate", "", "apply the database migrations and exit"},
	{"sync-classes", "--term T [--subject S]", "copy a term's classes from the SIS at SIS_BASE_URL"},
	{"import-classes", "FILE|DIR|- ...", "import classes from SIS class-search JSON files, a directory of them, or standard input"},
	{"grant-moderator", "EMAIL", "give a user the moderator role"},
	{"loadtest-seed", "--users N --rooms K --out FILE", "write users, rooms and sessions for the load generator cgload"},
	{"help", "[COMMAND]", "list the commands, or describe one"},
}

// run runs the command named by args.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && isHelp(args[0]) {
		cmd, args = "help", args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr, nil)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout)
	case "grant-moderator":
		return runGrantModerator(ctx, args, getenv, stdout)
	case "sync-classes":
		return runSyncClasses(ctx, args, getenv, stdout)
	case "import-classes":
		return runImportClasses(ctx, args, getenv, stdin, stdout)
	case "loadtest-seed":
		return runLoadtestSeed(ctx, args, getenv, stdout, stderr)
	case "help":
		if len(args) > 0 && args[0] != "help" && !isHelp(args[0]) {
			return run(ctx, []string{args[0], "--help"}, getenv, stdin, stdout, stderr)
		}
		printHelp(stdout)
		return nil
	default:
		return fmt.Errorf("unknown command %q (commongrounds --help lists them)", cmd)
	}
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// printHelp lists every command with its line.
func printHelp(w io.Writer) {
	fmt.Fprintf(w, "Common Grounds: a real-time chat server for university students.\n\n")
	fmt.Fprintf(w, "usage: commongrounds [COMMAND] [ARGUMENTS]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n\"commongrounds COMMAND --help\" gives a command's arguments and flags.\n")
	fmt.Fprintf(w, "Configuration comes from the environment; the README lists every variable.\n")
}

// newFlags returns the flag set of the named command, whose --help prints the command's usage
// line, summary and flags.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		for _, c := range commands {
			if c.name == name {
				fmt.Fprintf(w, "usage: commongrounds %s\n\n%s.\n", usageOf(name), upperFirst(c.summary))
			}
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses a command's arguments. With -h or --help it prints the command's help to
// stdout and returns done, and the command ends there with success.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return true, nil
	}
	if err != nil {
		return true, fmt.Errorf("%s: %w (usage: commongrounds %s; --help gives the flags)", fs.Name(), err, usageOf(fs.Name()))
	}
	return false, nil
}

// usageOf returns the name and arguments of a command.
func usageOf(name string) string {
	for _, c := range commands {
		if c.name == name {
			return strings.TrimSpace(c.name + " " + c.usage)
		}
	}
	return name
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
