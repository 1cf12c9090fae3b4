package main

import "github.com/spf13/cobra"

// newKeysCmd is being written (issue: privacy core).
func newKeysCmd() *cobra.Command {
	return &cobra.Command{Use: "keys", Short: "not built yet"}
}
