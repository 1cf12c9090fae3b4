package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// newJourneysApplyCmd builds `journeys apply`: store journey files as new
// versions, which every journey replica then runs.
func newJourneysApplyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply <journey.yaml>...",
		Short: "Store journey files as new versions; every journey replica runs them without a restart",
		Long: `Check each journey file as 'journeys validate' does and, when it has no
problems, store it as the journey's next version (the journey id comes from
the file); every journey replica then runs it. A file with problems is
refused, its problems printed as file:line[:column]: message, and the
version running keeps running; the command then fails. Needs the editor role.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			message, _ := cmd.Flags().GetString("message")
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			w := cmd.OutOrStdout()
			bad := 0
			for _, path := range args {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
				resp, err := client.ApplyJourney(ctx, &journeyv1.ApplyJourneyRequest{FileName: filepath.Base(path), Content: b, Message: message})
				cancel()
				if problems, ok := refusedProblems(err); ok {
					printProblems(w, path, problems)
					fmt.Fprintf(w, "%s: refused; the running version keeps running\n", path)
					bad++
					continue
				}
				if err != nil {
					return adminError(err)
				}
				printApplied(w, path, resp.GetVersion(), resp.GetChanged())
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d journey files refused", bad, len(args))
			}
			return nil
		},
	}
	cmd.Flags().String("message", "", "a note kept with the version: what changed and why (no patient data)")
	return cmd
}

// newJourneysHistoryCmd builds `journeys history <id>`.
func newJourneysHistoryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "history <journey id>",
		Short: "List every stored version of a journey: number, who applied it, when, content hash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
			defer cancel()
			resp, err := client.GetJourneyHistory(ctx, &journeyv1.GetJourneyHistoryRequest{JourneyId: args[0]})
			if err != nil {
				return adminError(err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tAPPLIED (UTC)\tBY\tHASH\tFILE\tNOTE")
			for _, v := range resp.GetVersions() {
				note := v.GetMessage()
				switch {
				case v.GetRemoved():
					note = "removed " + note
				case v.GetRestoredFrom() > 0:
					note = fmt.Sprintf("rollback to %d %s", v.GetRestoredFrom(), note)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.GetVersion(), v.GetAppliedAt().AsTime().UTC().Format(time.DateTime),
					v.GetPrincipal(), shortHash(v.GetHash()), v.GetFile(), note)
			}
			return tw.Flush()
		},
	}
}

// newJourneysRollbackCmd builds `journeys rollback <id> --to N`.
func newJourneysRollbackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback <journey id> --to <version>",
		Short: "Apply an earlier version of a journey again, as a new version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, _ := cmd.Flags().GetInt32("to")
			message, _ := cmd.Flags().GetString("message")
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
			defer cancel()
			resp, err := client.RollbackJourney(ctx, &journeyv1.RollbackJourneyRequest{JourneyId: args[0], ToVersion: to, Message: message})
			if problems, ok := refusedProblems(err); ok {
				name := fmt.Sprintf("%s version %d", args[0], to)
				printProblems(cmd.OutOrStdout(), name, problems)
				return fmt.Errorf("%s refused; the running version keeps running", name)
			}
			if err != nil {
				return adminError(err)
			}
			printApplied(cmd.OutOrStdout(), args[0], resp.GetVersion(), resp.GetChanged())
			return nil
		},
	}
	cmd.Flags().Int32("to", 0, "the version number to apply again (see journeys history)")
	_ = cmd.MarkFlagRequired("to")
	cmd.Flags().String("message", "", "a note kept with the version (no patient data)")
	return cmd
}

// newJourneysRemoveCmd builds `journeys remove <id>`.
func newJourneysRemoveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove <journey id>",
		Short: "Stop a journey: no new starts, and its pending timers stop unsent (apply or rollback brings it back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			message, _ := cmd.Flags().GetString("message")
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
			defer cancel()
			resp, err := client.RemoveJourney(ctx, &journeyv1.RemoveJourneyRequest{JourneyId: args[0], Message: message})
			if err != nil {
				return adminError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: removed as version %d by %s\n", args[0], resp.GetVersion().GetVersion(), resp.GetVersion().GetPrincipal())
			return nil
		},
	}
	cmd.Flags().String("message", "", "a note kept with the version (no patient data)")
	return cmd
}

// refusedProblems returns the problems of a refused apply or rollback.
func refusedProblems(err error) ([]*journeyv1.JourneyProblem, bool) {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return nil, false
	}
	for _, d := range st.Details() {
		if p, ok := d.(*journeyv1.JourneyProblems); ok {
			return p.GetProblems(), true
		}
	}
	return nil, false
}

func printApplied(w io.Writer, name string, v *journeyv1.JourneyVersion, changed bool) {
	if !changed {
		fmt.Fprintf(w, "%s: unchanged: journey %s already runs this file (version %d)\n", name, v.GetJourneyId(), v.GetVersion())
		return
	}
	fmt.Fprintf(w, "%s: applied: journey %s version %d (%s) by %s\n", name, v.GetJourneyId(), v.GetVersion(), shortHash(v.GetHash()), v.GetPrincipal())
}
