package main

import "github.com/spf13/cobra"

// newAuditCmd is being written (issue: privacy core).
func newAuditCmd() *cobra.Command {
	return &cobra.Command{Use: "audit", Short: "not built yet"}
}
