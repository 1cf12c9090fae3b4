// Package corpus finds the repository root (the directory holding go.work)
// and the shared test corpus of real FHIR and HL7 v2 messages beside it
// (<root>/../shared/corpus), for tests, the benchmark harness and the
// end-to-end tests.
package corpus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FindRoot returns the nearest directory at or above the working directory
// that holds go.work.
func FindRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("no go.work above the working directory: run from the carenotify checkout")
		}
	}
}

// FindDir returns <root>/../shared/corpus, or an error when it is missing.
func FindDir() (string, error) {
	root, err := FindRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(filepath.Dir(root), "shared", "corpus")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s is missing: the test corpus must sit beside the repository (found go.work in %s)", dir, root)
	}
	return dir, nil
}

// Root is FindRoot for tests: it fails the test on error.
func Root(tb testing.TB) string {
	tb.Helper()
	root, err := FindRoot()
	if err != nil {
		tb.Fatalf("repository root: %v", err)
	}
	return root
}

// Dir is FindDir for tests: it fails the test on error.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := FindDir()
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	return dir
}
