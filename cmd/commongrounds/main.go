// Command commongrounds is the Common Grounds server and its administrative commands.
//
//	commongrounds [serve]                      run the server (the default)
//	commongrounds migrate                      apply database migrations and exit
//	commongrounds grant-moderator EMAIL        give a user the moderator role
//	commongrounds sync-classes --term T [--subject S]
//	commongrounds import-classes FILE
//
// Configuration comes from the environment; see the README.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
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

// run runs the command named by args.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr, nil)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout)
	case "grant-moderator":
		return runGrantModerator(ctx, args, getenv, stdout)
	case "sync-classes":
		return runSyncClasses(ctx, args, getenv, stdout, stderr)
	case "import-classes":
		return runImportClasses(ctx, args, getenv, stdout, stderr)
	case "loadtest-seed":
		return runLoadtestSeed(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: commongrounds [serve|migrate|grant-moderator EMAIL|sync-classes --term T [--subject S]|import-classes FILE]")
		return nil
	default:
		return fmt.Errorf("unknown command %q (try help)", cmd)
	}
}
