package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// newJourneysCmd builds `carenotifyctl journeys`: the journeys the
// journey service runs.
func newJourneysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "journeys", Short: "List, check, apply and version the journeys the journey service runs"}
	cmd.AddCommand(newJourneysListCmd(), newJourneysValidateCmd(), newJourneysSimulateCmd(),
		newJourneysApplyCmd(), newJourneysHistoryCmd(), newJourneysRollbackCmd(), newJourneysRemoveCmd())
	return cmd
}

func newJourneysListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the journeys the journey service is running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
			defer cancel()
			resp, err := client.ListJourneys(ctx, &journeyv1.ListJourneysRequest{Tenant: tenant})
			if err != nil {
				return adminError(err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTRIGGER\tPURPOSE\tSTEPS\tVERSION\tFILE")
			for _, j := range resp.GetJourneys() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", j.GetId(), j.GetTrigger(), j.GetPurpose(), j.GetSteps(), j.GetVersion(), j.GetFile())
			}
			return tw.Flush()
		},
	}
	cmd.Flags().String("tenant", envOr("CARENOTIFY_TENANT", ""), "only the journeys that run for this tenant (env CARENOTIFY_TENANT)")
	return cmd
}

func newJourneysValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate <journey.yaml>...",
		Short: "Check journey files as the journey service would load them, changing nothing",
		Long: `Check journey files against the journey service's loaded templates, as it
would load them. Every problem is printed as file:line[:column]: message;
the command fails when any file has one. Nothing is loaded or changed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			bad := 0
			for _, path := range args {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
				resp, err := client.ValidateJourney(ctx, &journeyv1.ValidateJourneyRequest{FileName: filepath.Base(path), Content: b})
				cancel()
				if err != nil {
					return adminError(err)
				}
				if !printValidation(cmd.OutOrStdout(), path, resp) {
					bad++
				}
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d journey files have problems", bad, len(args))
			}
			return nil
		},
	}
}

// printValidation prints one file's result, the problems against path,
// and reports whether it is valid.
func printValidation(w io.Writer, path string, resp *journeyv1.ValidateJourneyResponse) bool {
	if resp.GetValid() {
		j := resp.GetJourney()
		fmt.Fprintf(w, "%s: ok: journey %s, %s, %s, %d steps, version %s\n", path, j.GetId(), j.GetTrigger(), j.GetPurpose(), j.GetSteps(), j.GetVersion())
		return true
	}
	printProblems(w, path, resp.GetProblems())
	return false
}

// printProblems prints problems against path, one a line.
func printProblems(w io.Writer, path string, problems []*journeyv1.JourneyProblem) {
	for _, p := range problems {
		switch {
		case p.GetLine() > 0 && p.GetColumn() > 0:
			fmt.Fprintf(w, "%s:%d:%d: %s\n", path, p.GetLine(), p.GetColumn(), p.GetMessage())
		case p.GetLine() > 0:
			fmt.Fprintf(w, "%s:%d: %s\n", path, p.GetLine(), p.GetMessage())
		default:
			fmt.Fprintf(w, "%s: %s\n", path, p.GetMessage())
		}
	}
}
