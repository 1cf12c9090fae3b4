package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/log"
)

// connectTimeout bounds the first connection to NATS; bus.Connect would
// otherwise retry until interrupted.
const connectTimeout = 10 * time.Second

// newKeysCmd builds `carenotifyctl keys`: the key-encryption keys (KEKs)
// that wrap the data keys of pkg/envelope. It edits a directory of key files
// that the operator then installs as the services' keyring secret; it never
// prints key bytes.
func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Manage the key-encryption keys that wrap PHI data keys",
		Long: `Manage the key-encryption keys (KEKs) that wrap the data keys PHI is
encrypted with (pkg/envelope). --dir is a directory of key files, <kid>.key
and primary, that you install as the services' keyring secret.

Services read the keyring only when they start, so restart (roll) them after
installing a changed keyring. To rotate across a running fleet:

  carenotifyctl keys generate --dir D          # new KEK, not primary yet
  (install D, roll the services: all can now read data keys it wraps)
  carenotifyctl keys rotate --dir D --kid NEW  # make it primary
  (install D, roll the services: new data keys are wrapped by NEW)
  carenotifyctl keys rewrap --dir D            # re-wrap older data keys under NEW
  carenotifyctl keys retire --dir D --kid OLD  # then install D and roll again

Without --kid, rotate generates the new KEK and makes it primary at once.`,
	}
	keys.PersistentFlags().String("dir", envOr("CARENOTIFY_KEYS_DIR", ""), "directory of key files (env CARENOTIFY_KEYS_DIR)")
	keys.AddCommand(newKeysGenerateCmd(), newKeysRotateCmd(), newKeysRewrapCmd(), newKeysRetireCmd(), newKeysListCmd())
	return keys
}

func keysDir(cmd *cobra.Command) (string, error) {
	dir, err := cmd.Flags().GetString("dir")
	if err != nil {
		return "", err
	}
	if dir == "" {
		return "", errors.New("--dir is required")
	}
	return dir, nil
}

func newKeysGenerateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Add a new KEK, not primary; prints its kid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			kid, err := envelope.GenerateKEK(dir)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), kid)
			fmt.Fprintf(cmd.ErrOrStderr(), "generated KEK %s (not primary). Install the keyring and roll the services, then make it primary with `carenotifyctl keys rotate --kid %s`.\n", kid, kid)
			return nil
		},
	}
}

func newKeysRotateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new KEK (or --kid, an existing one) primary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			kid, err := cmd.Flags().GetString("kid")
			if err != nil {
				return err
			}
			old := ""
			kr, err := envelope.LoadKeyring(dir)
			switch {
			case err == nil:
				old = kr.Primary()
			case !errors.Is(err, fs.ErrNotExist):
				// Never rotate a keyring that does not load: fix it first.
				return err
			}
			if kid == "" {
				if kid, err = envelope.GenerateKEK(dir); err != nil {
					return err
				}
			}
			if kid == old {
				return fmt.Errorf("%s is already the primary KEK", kid)
			}
			if err := envelope.SetPrimary(dir, kid); err != nil {
				return err
			}
			kr, err = envelope.LoadKeyring(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "new primary KEK: %s\n", kr.Primary())
			if old == "" {
				fmt.Fprintln(out, "previous primary: none")
			} else {
				fmt.Fprintf(out, "previous primary: %s (still decrypts; retire it after rewrap)\n", old)
			}
			fmt.Fprintln(out, "next: install the keyring and roll every service (they load it only at start) so new data keys are wrapped by the new primary; then run `carenotifyctl keys rewrap`.")
			printWarnings(cmd.ErrOrStderr(), kr)
			return nil
		},
	}
	cmd.Flags().String("kid", "", "promote this existing KEK instead of generating one")
	return cmd
}

func newKeysRewrapCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every data key under the primary KEK (payloads are not touched)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			kr, err := envelope.LoadKeyring(dir)
			if err != nil {
				return err
			}
			printWarnings(cmd.ErrOrStderr(), kr)
			ks, closeConn, err := openKeyStore(cmd)
			defer closeConn()
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				fmt.Fprintln(cmd.OutOrStdout(), "no data keys yet: nothing to re-wrap")
				return nil
			}
			if err != nil {
				return err
			}
			r, err := envelope.NewSealer(kr, ks).Rewrap(cmd.Context())
			fmt.Fprintf(cmd.OutOrStdout(), "data keys: %d, re-wrapped under %s: %d, already under it: %d, failed: %d\n",
				r.Total, r.Primary, r.Rewrapped, r.Current, r.Failed)
			return err
		},
	}
}

func newKeysRetireCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retire",
		Short: "Delete a KEK that no data key is wrapped by any more",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			kid, err := cmd.Flags().GetString("kid")
			if err != nil {
				return err
			}
			if kid == "" {
				return errors.New("--kid is required")
			}
			kr, err := envelope.LoadKeyring(dir)
			if err != nil {
				return err
			}
			switch {
			case !kr.Has(kid):
				return fmt.Errorf("no KEK %s in %s", kid, dir)
			case kid == kr.Primary():
				return fmt.Errorf("%s is the primary KEK: rotate to a new one first", kid)
			}
			ks, closeConn, err := openKeyStore(cmd)
			defer closeConn()
			usage := map[string]int{}
			switch {
			case errors.Is(err, jetstream.ErrBucketNotFound):
				// No data keys at all.
			case err != nil:
				return fmt.Errorf("cannot check whether %s is still in use: %w", kid, err)
			default:
				if usage, err = envelope.KEKUsage(cmd.Context(), ks); err != nil {
					return fmt.Errorf("cannot check whether %s is still in use: %w", kid, err)
				}
			}
			if n := usage[kid]; n > 0 {
				return fmt.Errorf("%d data keys are still wrapped by %s: run `carenotifyctl keys rewrap` first (after rolling the services onto the new primary)", n, kid)
			}
			if err := envelope.RetireKEK(dir, kid); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "retired KEK %s: its key file is deleted. Install the keyring, roll the services, and destroy every other copy of the key (old secrets, backups).\n", kid)
			return nil
		},
	}
	cmd.Flags().String("kid", "", "the KEK to retire")
	return cmd
}

func newKeysListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the KEKs and which one is primary (never key bytes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			kr, err := envelope.LoadKeyring(dir)
			if err != nil {
				return err
			}
			for _, kid := range kr.IDs() {
				if kid == kr.Primary() {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\tprimary\n", kid)
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), kid)
				}
			}
			printWarnings(cmd.ErrOrStderr(), kr)
			return nil
		},
	}
}

func printWarnings(w io.Writer, kr *envelope.Keyring) {
	for _, warning := range kr.Warnings() {
		fmt.Fprintln(w, "warning:", warning)
	}
}

// openKeyStore connects to --nats-url and opens the existing CN_DATA_KEYS
// bucket without changing its configuration (the services own it). If
// there is no bucket, the error wraps jetstream.ErrBucketNotFound. Call
// closeConn when done, also after an error.
func openKeyStore(cmd *cobra.Command) (ks envelope.KeyStore, closeConn func(), err error) {
	url, err := cmd.Flags().GetString("nats-url")
	if err != nil {
		return nil, func() {}, err
	}
	connCtx, cancel := context.WithTimeout(cmd.Context(), connectTimeout)
	defer cancel()
	logger := log.New(cmd.ErrOrStderr(), slog.LevelWarn, "carenotifyctl")
	nc, js, err := bus.Connect(connCtx, url, "carenotifyctl", logger)
	if err != nil {
		return nil, func() {}, err
	}
	ks, err = envelope.OpenKVStore(cmd.Context(), js)
	return ks, nc.Close, err
}
