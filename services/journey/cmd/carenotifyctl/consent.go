package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// newConsentCmd builds `carenotifyctl consent`: patients' consent records
// through the journey admin API.
func newConsentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "consent", Short: "Read, record and rebuild patients' consent"}
	cmd.PersistentFlags().String("tenant", envOr("CARENOTIFY_TENANT", ""), "tenant (env CARENOTIFY_TENANT)")
	cmd.AddCommand(newConsentGetCmd(), newConsentSetCmd(), newConsentRebuildCmd())
	return cmd
}

func newConsentGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get <patient id> <email|sms> <treatment|operations|marketing>",
		Short: "Show a patient's consent record for one channel and purpose (audited as a PHI read)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			return withAdmin(cmd, func(ctx context.Context, c journeyv1.AdminServiceClient) error {
				resp, err := c.GetConsent(ctx, &journeyv1.GetConsentRequest{Tenant: tenant, PatientId: args[0], Channel: args[1], Purpose: args[2]})
				if err != nil {
					return adminError(err)
				}
				printConsent(cmd, resp.GetConsent())
				return nil
			})
		},
	}
}

func newConsentSetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set <patient id> <email|sms> <treatment|operations|marketing> <granted|denied|revoked>",
		Short: "Record a patient's consent decision for one channel and purpose (source admin)",
		Args:  cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			evidence, _ := cmd.Flags().GetString("evidence")
			return withAdmin(cmd, func(ctx context.Context, c journeyv1.AdminServiceClient) error {
				resp, err := c.SetConsent(ctx, &journeyv1.SetConsentRequest{
					Tenant: tenant, PatientId: args[0], Channel: args[1], Purpose: args[2], State: args[3],
					Source: "admin", EvidenceRef: evidence,
				})
				if err != nil {
					return adminError(err)
				}
				printConsent(cmd, resp.GetConsent())
				return nil
			})
		},
	}
	cmd.Flags().String("evidence", "", "evidence reference: a ticket number, a signed form's id (at most 256 bytes)")
	return cmd
}

func newConsentRebuildCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild the tenant's consent records in Redis from the CONSENT stream",
		Long: `Rewrite the tenant's consent records in Redis from the consent changes
journey published to the CONSENT stream (the latest change per patient,
channel and purpose wins). Records the stream has no change for are left
alone; running it again is safe. Needs the consent-admin role.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			return withAdmin(cmd, func(ctx context.Context, c journeyv1.AdminServiceClient) error {
				resp, err := c.RebuildConsent(ctx, &journeyv1.RebuildConsentRequest{Tenant: tenant})
				if err != nil {
					return adminError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "consent of tenant %s rebuilt: %d changes read, %d records written, %d refused\n",
					tenant, resp.GetChanges(), resp.GetRecords(), resp.GetRefused())
				return nil
			})
		},
	}
}

// withAdmin calls fn with an admin client and a deadline; --tenant is
// required.
func withAdmin(cmd *cobra.Command, fn func(context.Context, journeyv1.AdminServiceClient) error) error {
	if tenant, _ := cmd.Flags().GetString("tenant"); tenant == "" {
		return fmt.Errorf("--tenant is required (or CARENOTIFY_TENANT)")
	}
	client, closeConn, err := adminConnect(cmd)
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
	defer cancel()
	return fn(ctx, client)
}

// printConsent prints a record. The evidence reference may be PHI: it is
// shown to the operator who asked, as the API answered it.
func printConsent(cmd *cobra.Command, c *journeyv1.Consent) {
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s by %s at %s", c.GetChannel(), c.GetPurpose(), c.GetState(), c.GetSource(),
		c.GetChangedAt().AsTime().UTC().Format(time.RFC3339))
	if e := c.GetEvidenceRef(); e != "" {
		fmt.Fprintf(cmd.OutOrStdout(), " (evidence: %s)", e)
	}
	fmt.Fprintln(cmd.OutOrStdout())
}
