package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// The dead-letter commands talk to ingest's HTTP admin API
// (GET /admin/dead-letters, POST /admin/dead-letters/{seq}/replay; see
// services/ingest/README.md). They never import ingest's code: the wire
// format below is that API's documented JSON.

// deadLetter is one entry of GET /admin/dead-letters.
type deadLetter struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Tenant   string    `json:"tenant"`
	Source   string    `json:"source"`
	Reason   string    `json:"reason"`
	Input    string    `json:"input"`
	PushType string    `json:"pushType,omitempty"`
}

// replayResult is the answer of POST /admin/dead-letters/{seq}/replay.
type replayResult struct {
	Seq     uint64          `json:"seq"`
	Source  string          `json:"source"`
	Input   string          `json:"input"`
	Status  int             `json:"status,omitempty"`
	Outcome json.RawMessage `json:"outcome,omitempty"`
	ACK     string          `json:"ack,omitempty"`
	Events  int             `json:"events"`
}

// maxAdminAnswer bounds an admin API answer read.
const maxAdminAnswer = 16 << 20

// newDeadLettersCmd builds `carenotifyctl dead-letters`.
func newDeadLettersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "List and replay the EHR input ingest could not process (EHR_DEAD)",
		Long: `List and replay the EHR input ingest kept on EHR_DEAD because it could not
process it (malformed, unmappable, a payload it could not fetch then), through
ingest's admin API. Bodies are never shown: a listing gives each letter's
sequence number, time, tenant, source, input path and reason.

The admin token is read from the file --admin-token-file names, else from the
environment variable CARENOTIFY_INGEST_ADMIN_TOKEN (never from a flag value).`,
	}
	f := cmd.PersistentFlags()
	f.String("ingest-url", envOr("CARENOTIFY_INGEST_URL", "http://127.0.0.1:8080"), "ingest's HTTP address (env CARENOTIFY_INGEST_URL)")
	f.String("admin-token-file", envOr("CARENOTIFY_INGEST_ADMIN_TOKEN_FILE", ""), "file holding ingest's INGEST_ADMIN_TOKEN (env CARENOTIFY_INGEST_ADMIN_TOKEN_FILE; else env CARENOTIFY_INGEST_ADMIN_TOKEN)")
	f.Bool("json", false, "print the admin API's JSON")
	cmd.AddCommand(newDeadLettersListCmd(), newDeadLettersReplayCmd())
	return cmd
}

func newDeadLettersListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List dead letters, oldest first (headers only, never bodies)",
		Example: "  carenotifyctl dead-letters list --source epic-prod --limit 20",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newIngestAdmin(cmd)
			if err != nil {
				return err
			}
			source, _ := cmd.Flags().GetString("source")
			limit, _ := cmd.Flags().GetInt("limit")
			raw, letters, err := c.list(cmd.Context(), source, limit)
			if err != nil {
				return err
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(raw)))
				return err
			}
			return printDeadLetters(cmd.OutOrStdout(), letters)
		},
	}
	cmd.Flags().String("source", "", "only this source's letters")
	cmd.Flags().Int("limit", 100, "at most this many (1..1000)")
	return cmd
}

func newDeadLettersReplayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay (--id SEQ | --all)",
		Short: "Run dead letters through ingest again, as their original source",
		Long: `Run a dead letter (--id, its sequence number from "list") or every listed one
(--all, with --source and --limit as for list) through the path it came in by,
as its original source. Prints what the sender would be answered now and how
many events were stored. A letter that fails again is kept, not duplicated.`,
		Example: `  carenotifyctl dead-letters replay --id 42
  carenotifyctl dead-letters replay --all --source lab-hl7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			id, _ := f.GetUint64("id")
			all, _ := f.GetBool("all")
			if (id == 0) == !all {
				return errors.New("give --id <seq> or --all")
			}
			c, err := newIngestAdmin(cmd)
			if err != nil {
				return err
			}
			seqs := []uint64{id}
			if all {
				source, _ := f.GetString("source")
				limit, _ := f.GetInt("limit")
				_, letters, err := c.list(cmd.Context(), source, limit)
				if err != nil {
					return err
				}
				seqs = seqs[:0]
				for _, l := range letters {
					seqs = append(seqs, l.Seq)
				}
			}
			asJSON, _ := f.GetBool("json")
			w := cmd.OutOrStdout()
			for _, seq := range seqs {
				raw, res, err := c.replay(cmd.Context(), seq)
				if err != nil {
					return err
				}
				if asJSON {
					_, err = fmt.Fprintln(w, strings.TrimSpace(string(raw)))
				} else {
					_, err = fmt.Fprintln(w, describeReplay(res))
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().Uint64("id", 0, "sequence number of the dead letter to replay")
	cmd.Flags().Bool("all", false, "replay every listed dead letter")
	cmd.Flags().String("source", "", "with --all: only this source's letters")
	cmd.Flags().Int("limit", 100, "with --all: at most this many (1..1000)")
	return cmd
}

// ingestAdmin calls ingest's admin API.
type ingestAdmin struct {
	base  string
	token string
	http  *http.Client
}

func newIngestAdmin(cmd *cobra.Command) (*ingestAdmin, error) {
	f := cmd.Flags()
	base, _ := f.GetString("ingest-url")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("--ingest-url must be an http(s) URL such as http://127.0.0.1:8080")
	}
	token := os.Getenv("CARENOTIFY_INGEST_ADMIN_TOKEN")
	if file, _ := f.GetString("admin-token-file"); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read admin token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, errors.New("no admin token: set --admin-token-file or CARENOTIFY_INGEST_ADMIN_TOKEN")
	}
	return &ingestAdmin{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: adminTimeout}}, nil
}

func (c *ingestAdmin) list(ctx context.Context, source string, limit int) ([]byte, []deadLetter, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if source != "" {
		q.Set("source", source)
	}
	raw, err := c.do(ctx, http.MethodGet, "/admin/dead-letters?"+q.Encode())
	if err != nil {
		return nil, nil, err
	}
	var body struct {
		DeadLetters []deadLetter `json:"deadLetters"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, nil, errors.New("ingest answered a dead-letter list that does not decode")
	}
	return raw, body.DeadLetters, nil
}

func (c *ingestAdmin) replay(ctx context.Context, seq uint64) ([]byte, replayResult, error) {
	raw, err := c.do(ctx, http.MethodPost, "/admin/dead-letters/"+strconv.FormatUint(seq, 10)+"/replay")
	if err != nil {
		return nil, replayResult{}, fmt.Errorf("replay %d: %w", seq, err)
	}
	var res replayResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, replayResult{}, fmt.Errorf("replay %d: ingest answered JSON that does not decode", seq)
	}
	return raw, res, nil
}

// do sends one request and returns the 200 answer's body; other answers
// become errors saying what to do.
func (c *ingestAdmin) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ingest admin api: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return nil, fmt.Errorf("ingest admin api: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusUnauthorized:
		return nil, errors.New("ingest refused the admin token (is INGEST_ADMIN_TOKEN set on ingest, and the same?)")
	case http.StatusNotFound:
		return nil, errors.New("no such dead letter")
	case http.StatusNotImplemented:
		return nil, errors.New("ingest has no dead-letter store")
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return nil, fmt.Errorf("ingest answered %d: %s", resp.StatusCode, msg)
}

func printDeadLetters(w io.Writer, letters []deadLetter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tTENANT\tSOURCE\tINPUT\tREASON")
	for _, l := range letters {
		input := l.Input
		if l.PushType != "" {
			input += " (" + l.PushType + ")"
		}
		if input == "" {
			input = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.Seq, l.Time.UTC().Format(time.RFC3339), l.Tenant, l.Source, input, l.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letter(s)\n", len(letters))
	return err
}

// describeReplay says in one line what a replay gave: the HTTP status
// and first issue of a FHIR answer, or the HL7 acknowledgment code.
func describeReplay(r replayResult) string {
	s := fmt.Sprintf("%d %s %s: ", r.Seq, r.Source, r.Input)
	if r.ACK != "" {
		s += "ack " + ackCode(r.ACK)
	} else {
		s += "status " + strconv.Itoa(r.Status)
		var oo struct {
			Issue []struct {
				Severity, Code, Diagnostics string
			} `json:"issue"`
		}
		if json.Unmarshal(r.Outcome, &oo) == nil && len(oo.Issue) > 0 {
			is := oo.Issue[0]
			s += fmt.Sprintf(" (%s %s: %s)", is.Severity, is.Code, is.Diagnostics)
		}
	}
	return s + fmt.Sprintf(", %d event(s) stored", r.Events)
}

// ackCode returns MSA-1 of an HL7 acknowledgement (segments separated by
// CR), or "?".
func ackCode(ack string) string {
	for seg := range strings.SplitSeq(ack, "\r") {
		if len(seg) > 4 && strings.HasPrefix(seg, "MSA") {
			fields := strings.Split(seg, seg[3:4])
			if len(fields) > 1 && fields[1] != "" {
				return fields[1]
			}
		}
	}
	return "?"
}
