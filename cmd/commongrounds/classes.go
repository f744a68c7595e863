package main

import (
	"context"
	"errors"
	"io"
)

// runSyncClasses syncs classes from the SIS.
func runSyncClasses(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("sync-classes: not implemented yet")
}

// runImportClasses imports classes from a JSON file in the SIS format.
func runImportClasses(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("import-classes: not implemented yet")
}
