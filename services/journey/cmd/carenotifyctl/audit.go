package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/log"
)

// auditConnectTimeout bounds the first connection to NATS; bus.Connect
// would otherwise retry until interrupted.
const auditConnectTimeout = 10 * time.Second

// Audit key file names written by `audit keys generate`.
const (
	auditPseudonymKeyFile = "pseudonym.key"
	auditSigningKeyFile   = "audit-signing.key"
	auditVerifyKeyFile    = "audit-verify.pem"
)

// newAuditCmd builds `carenotifyctl audit`: verifying and querying the
// hash-chained audit trail in the AUDIT stream (pkg/audit), and making its
// keys.
func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and query the tamper-evident audit trail",
		Long: `Verify and query the audit trail: one hash chain per tenant and service in
the AUDIT stream (audit.<tenant>.<service>), with signed checkpoints.

  carenotifyctl audit keys generate --dir D     # pseudonym and signing keys
  carenotifyctl audit verify --verify-key D/audit-verify.pem
  carenotifyctl audit query --tenant T --patient ID --pseudonym-key D/pseudonym.key

verify exits non-zero when any record was deleted, altered, moved or its
chain broken, or a checkpoint signature does not verify.`,
	}
	keys := &cobra.Command{Use: "keys", Short: "Make the audit trail's keys"}
	keys.AddCommand(newAuditKeysGenerateCmd())
	cmd.AddCommand(newAuditVerifyCmd(), newAuditQueryCmd(), keys)
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Walk the audit chains and report every deleted, altered or reordered record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			tenant, _ := f.GetString("tenant")
			service, _ := f.GetString("service")
			keyPath, _ := f.GetString("verify-key")
			if keyPath == "" {
				return errors.New("--verify-key is required")
			}
			pub, err := audit.LoadVerifyKey(keyPath)
			if err != nil {
				return err
			}
			js, closeConn, err := auditConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			reps, err := auditVerify(cmd.Context(), js, tenant, service, pub)
			if err != nil {
				return err
			}
			return printVerify(cmd.OutOrStdout(), reps)
		},
	}
	f := cmd.Flags()
	f.String("tenant", "", "verify only this tenant's chains")
	f.String("service", "", "verify only this service's chains")
	f.String("verify-key", envOr("CARENOTIFY_AUDIT_VERIFY_KEY", ""), "checkpoint verify key: PEM public key, or the signing key (env CARENOTIFY_AUDIT_VERIFY_KEY)")
	return cmd
}

// auditVerify verifies one chain when both tenant and service are given,
// else every chain matching those given.
func auditVerify(ctx context.Context, js jetstream.JetStream, tenant, service string, pub ed25519.PublicKey) ([]audit.Report, error) {
	if tenant != "" && service != "" {
		rep, err := audit.Verify(ctx, js, tenant, service, pub)
		if err != nil {
			return nil, err
		}
		return []audit.Report{rep}, nil
	}
	all, err := audit.VerifyAll(ctx, js, pub)
	if err != nil {
		return nil, err
	}
	var reps []audit.Report
	for _, rep := range all {
		if (tenant == "" || rep.Tenant == tenant) && (service == "" || rep.Service == service) {
			reps = append(reps, rep)
		}
	}
	return reps, nil
}

// printVerify prints one summary line per chain and a line per problem,
// and returns an error naming every problem when there is any.
func printVerify(w io.Writer, reps []audit.Report) error {
	if len(reps) == 0 {
		fmt.Fprintln(w, "no audit chains")
		return nil
	}
	var bad []string
	nproblems := 0
	for _, rep := range reps {
		status := "ok"
		if !rep.OK() {
			status = fmt.Sprintf("%d PROBLEMS", len(rep.Problems))
		}
		cp := "no verified checkpoint"
		if c := rep.LastCheckpoint; c != nil {
			cp = fmt.Sprintf("last checkpoint %d at %s", c.Seq, c.Time.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "%s/%s: %s; %d records, seq %d..%d, head %s; %d checkpoints, %s, %d records after it",
			rep.Tenant, rep.Service, status, rep.Records, rep.FirstSeq, rep.LastSeq, shortHash(rep.Head), rep.Checkpoints, cp, rep.Unsealed)
		if rep.Expired > 0 {
			fmt.Fprintf(w, "; records 1..%d expired", rep.Expired)
		}
		fmt.Fprintln(w)
		var names []string
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  %s\n", p)
			names = append(names, problemName(p))
		}
		if len(names) > 0 {
			nproblems += len(names)
			bad = append(bad, rep.Tenant+"/"+rep.Service+": "+strings.Join(names, ", "))
		}
	}
	if nproblems > 0 {
		return fmt.Errorf("audit trail: %d problems in %d of %d chains: %s", nproblems, len(bad), len(reps), strings.Join(bad, "; "))
	}
	return nil
}

// problemName is a problem in a few words, e.g. "deleted 10..12".
func problemName(p audit.Problem) string {
	if p.ToSeq > p.Seq {
		return fmt.Sprintf("%s %d..%d", p.Kind, p.Seq, p.ToSeq)
	}
	return fmt.Sprintf("%s %d", p.Kind, p.Seq)
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "-"
	}
	return h
}

func newAuditQueryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "query",
		Short: "List audit records by tenant, service, patient, object, actor, action and time",
		Long: `List audit records, oldest first. --patient takes a patient's logical id in
clear and needs --tenant and --pseudonym-key: the trail holds only its keyed
hash. --since and --until take RFC 3339 times or durations back from now
(24h). Query does not verify the chain; run audit verify for that.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flt, asJSON, err := auditFilter(cmd, time.Now())
			if err != nil {
				return err
			}
			js, closeConn, err := auditConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			recs, err := audit.Query(cmd.Context(), js, flt)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONLines(cmd.OutOrStdout(), recs)
			}
			return printTable(cmd.OutOrStdout(), recs)
		},
	}
	f := cmd.Flags()
	f.String("pseudonym-key", envOr("CARENOTIFY_AUDIT_PSEUDONYM_KEY", ""), "pseudonym key file, needed with --patient (env CARENOTIFY_AUDIT_PSEUDONYM_KEY)")
	f.String("tenant", "", "tenant")
	f.String("service", "", "service that wrote the records")
	f.String("patient", "", "patient logical id (hashed before the query; needs --tenant)")
	f.String("object-type", "", "object type, e.g. ClinicalEvent")
	f.String("object-id", "", "object id")
	f.String("actor", "", "actor id")
	f.String("action", "", "action, e.g. phi.read")
	f.String("since", "", "records at or after this time (RFC 3339, or a duration back from now)")
	f.String("until", "", "records before this time (RFC 3339, or a duration back from now)")
	f.Int("limit", 1000, "at most this many records (0: no limit)")
	f.Bool("json", false, "print JSON lines instead of a table")
	return cmd
}

// auditFilter builds the query filter from the flags.
func auditFilter(cmd *cobra.Command, now time.Time) (audit.Filter, bool, error) {
	f := cmd.Flags()
	str := func(name string) string { v, _ := f.GetString(name); return v }
	flt := audit.Filter{
		Tenant:     str("tenant"),
		Service:    str("service"),
		Patient:    str("patient"),
		ObjectType: str("object-type"),
		ObjectID:   str("object-id"),
		ActorID:    str("actor"),
		Action:     str("action"),
	}
	flt.Limit, _ = f.GetInt("limit")
	asJSON, _ := f.GetBool("json")
	var err error
	if flt.Since, err = parseAuditTime(str("since"), now); err != nil {
		return flt, false, fmt.Errorf("--since: %w", err)
	}
	if flt.Until, err = parseAuditTime(str("until"), now); err != nil {
		return flt, false, fmt.Errorf("--until: %w", err)
	}
	if flt.Patient != "" {
		if flt.Tenant == "" {
			return flt, false, errors.New("--patient needs --tenant")
		}
		path := str("pseudonym-key")
		if path == "" {
			return flt, false, errors.New("--patient needs --pseudonym-key")
		}
		if flt.PseudonymKey, err = audit.LoadPseudonymKey(path); err != nil {
			return flt, false, err
		}
	}
	return flt, asJSON, nil
}

// parseAuditTime parses an RFC 3339 time or a duration back from now; ""
// is the zero time.
func parseAuditTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("want an RFC 3339 time or a positive duration such as 24h")
	}
	return now.Add(-d), nil
}

func printJSONLines(w io.Writer, recs []audit.Record) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write record: %w", err)
		}
	}
	return nil
}

func printTable(w io.Writer, recs []audit.Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSERVICE\tSEQ\tTIME\tACTOR\tACTION\tOBJECT\tPATIENT REF\tPURPOSE\tOUTCOME\tREASON")
	for _, r := range recs {
		obj := "-"
		if r.Object.Type != "" {
			obj = r.Object.Type + "/" + r.Object.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s:%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Tenant, r.Service, r.Seq, r.Time.Format(time.RFC3339), r.Actor.Type, r.Actor.ID, r.Action, obj,
			shortHash(r.PatientRef), dash(r.Purpose), r.Outcome, dash(r.Reason))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newAuditKeysGenerateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a new pseudonym key and checkpoint key pair (mode 0600, never overwriting)",
		Long: `Write into --dir:

  pseudonym.key      32 random bytes, base64: the key patient references are
                     hashed with. Mount it into every service and keep it:
                     without it no patient can be looked up in the trail.
  audit-signing.key  Ed25519 private key (PEM PKCS #8) that signs checkpoints.
                     Mount it into every service.
  audit-verify.pem   its public key, for audit verify. Keep a copy away from
                     the cluster.

Refuses to overwrite any of them. No key is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, _ := cmd.Flags().GetString("dir")
			if dir == "" {
				return errors.New("--dir is required")
			}
			paths := []string{
				filepath.Join(dir, auditPseudonymKeyFile),
				filepath.Join(dir, auditSigningKeyFile),
				filepath.Join(dir, auditVerifyKeyFile),
			}
			for _, p := range paths {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s exists; not overwriting audit keys", p)
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("create key dir: %w", err)
			}
			if err := audit.GeneratePseudonymKey(paths[0]); err != nil {
				return err
			}
			pub, err := audit.GenerateSigningKey(paths[1])
			if err != nil {
				return err
			}
			if err := audit.WriteVerifyKey(paths[2], pub); err != nil {
				return err
			}
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), "wrote", p)
			}
			return nil
		},
	}
	cmd.Flags().String("dir", "", "directory to write the key files into (created 0700)")
	return cmd
}

// auditConnect connects to --nats-url. Call closeConn when done.
func auditConnect(cmd *cobra.Command) (js jetstream.JetStream, closeConn func(), err error) {
	url, err := cmd.Flags().GetString("nats-url")
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), auditConnectTimeout)
	defer cancel()
	logger := log.New(cmd.ErrOrStderr(), slog.LevelWarn, "carenotifyctl")
	nc, js, err := bus.Connect(ctx, url, "carenotifyctl", logger)
	if err != nil {
		return nil, nil, err
	}
	return js, nc.Close, nil
}
