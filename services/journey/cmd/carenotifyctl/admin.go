package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/carenotify/carenotify/services/journey/internal/adminauth"
)

// newAdminCmd builds `carenotifyctl admin`: tokens for the journey
// service's admin API.
func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Make bearer tokens for the journey admin API"}
	token := &cobra.Command{Use: "token", Short: "Admin API bearer tokens"}
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Make a new admin API token and print it with the line for JOURNEY_ADMIN_TOKENS_FILE",
		Long: `Make a new random bearer token (32 bytes, base64url) for the journey admin
API. It prints the token once, on the first line: give it to its owner.
The second line is what goes into JOURNEY_ADMIN_TOKENS_FILE (principal,
roles, and the token's SHA-256 only); restart journey to load it.

Roles: viewer (list journeys, trace, consent get), editor (apply journeys),
consent-admin (consent get and set).`,
		Example: `  carenotifyctl admin token generate --principal alice --roles viewer,consent-admin`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			principal, _ := cmd.Flags().GetString("principal")
			rolesFlag, _ := cmd.Flags().GetString("roles")
			if !adminauth.ValidPrincipal(principal) {
				return errors.New("--principal: letters, digits, '.', '_' and '-', at most 64 (it is written to the audit trail; no e-mail addresses)")
			}
			roles, err := adminauth.ParseRoles(rolesFlag)
			if err != nil {
				return fmt.Errorf("--roles: %w", err)
			}
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			tok := base64.RawURLEncoding.EncodeToString(b)
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s\n", tok, adminauth.HashLine(principal, roles, tok))
			return err
		},
	}
	gen.Flags().String("principal", "", "who the token is for, as the audit trail will name them")
	gen.Flags().String("roles", "viewer", "comma-separated roles: viewer, editor, consent-admin")
	token.AddCommand(gen)
	cmd.AddCommand(token)
	return cmd
}
