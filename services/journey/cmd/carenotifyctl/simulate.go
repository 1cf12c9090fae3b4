package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

func newJourneysSimulateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "simulate -f <file> [-f <file>...] [--source S]",
		Short: "Show which journeys events would start and every message they would send, changing nothing",
		Long: `Ask the journey service what the events in a file would do, as if they
arrived at --at (default now): which journeys start (and why not) and every
message that would go out, when and on which channel. Nothing is sent,
stored or audited; consent, contact points and frequency caps are decided
at send time and are not simulated. The output holds no PHI.

A file holds carenotify.events.v1.ClinicalEvent as proto JSON (one
object, a JSON array of them, or one per line), or the EHR's own input:
FHIR JSON (a notification Bundle, another Bundle or a resource) or HL7 v2
(messages, MLLP frames or a batch). Those are mapped first by ingest's
dry-run mapping (POST /admin/map/<--source>, ingest's admin token; nothing
stored), all in one request so that a rescheduled message after a booked
one shows the replan; --baseline none treats every resource as first seen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			paths, _ := cmd.Flags().GetStringArray("file")
			atFlag, _ := cmd.Flags().GetString("at")
			if len(paths) == 0 {
				return errors.New("-f is required: a file of ClinicalEvent JSON, FHIR JSON or HL7 v2")
			}
			events, err := readSimulateFiles(cmd, paths)
			if err != nil {
				return err
			}
			req := &journeyv1.SimulateRequest{Events: events}
			if atFlag != "" {
				at, err := time.Parse(time.RFC3339, atFlag)
				if err != nil {
					return fmt.Errorf("--at: want an RFC 3339 time such as 2026-12-03T09:00:00Z")
				}
				req.At = timestamppb.New(at)
			}
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
			defer cancel()
			resp, err := client.Simulate(ctx, req)
			if err != nil {
				return adminError(err)
			}
			printSimulation(cmd.OutOrStdout(), resp)
			return nil
		},
	}
	cmd.Flags().StringArrayP("file", "f", nil, "file of ClinicalEvent JSON, FHIR JSON or HL7 v2 (repeatable, run in order)")
	cmd.Flags().String("source", "", "ingest source whose mapping FHIR and HL7 v2 files go through (required for them)")
	cmd.Flags().String("baseline", "current", "ingest dry run: current (against the live last-seen state, read only) or none (first sight)")
	cmd.Flags().String("ingest-url", envOr("CARENOTIFY_INGEST_URL", "http://127.0.0.1:8080"), "ingest's HTTP address (env CARENOTIFY_INGEST_URL)")
	cmd.Flags().String("admin-token-file", envOr("CARENOTIFY_INGEST_ADMIN_TOKEN_FILE", ""), "file holding ingest's INGEST_ADMIN_TOKEN (env CARENOTIFY_INGEST_ADMIN_TOKEN_FILE; else env CARENOTIFY_INGEST_ADMIN_TOKEN)")
	cmd.Flags().String("at", "", "when the events arrive (RFC 3339; default now)")
	return cmd
}

// readSimulateFiles reads every file: ClinicalEvent JSON as it is, FHIR
// and HL7 v2 files through ingest's dry-run mapping (one request for all
// of them, so a rescheduled message after a booked one is a reschedule),
// keeping the files' order.
func readSimulateFiles(cmd *cobra.Command, paths []string) ([]*eventsv1.ClinicalEvent, error) {
	byFile := make([][]*eventsv1.ClinicalEvent, len(paths))
	var ehr []ehrFile
	var ehrIndex []int
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if kind := detectFile(b); kind != fileEvents {
			ehr = append(ehr, ehrFile{name: p, kind: kind, body: b})
			ehrIndex = append(ehrIndex, i)
			continue
		}
		evs, err := parseEvents(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		byFile[i] = evs
	}
	if len(ehr) > 0 {
		source, _ := cmd.Flags().GetString("source")
		baseline, _ := cmd.Flags().GetString("baseline")
		if source == "" {
			return nil, errors.New("--source is required for FHIR and HL7 v2 files: the ingest source whose mapping they go through")
		}
		c, err := newIngestAdmin(cmd)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
		defer cancel()
		mapped, problems, err := c.mapFiles(ctx, source, baseline, ehr)
		if err != nil {
			return nil, err
		}
		for _, p := range problems {
			fmt.Fprintln(cmd.ErrOrStderr(), p)
		}
		for j, evs := range mapped {
			byFile[ehrIndex[j]] = evs
		}
	}
	var out []*eventsv1.ClinicalEvent
	for _, evs := range byFile {
		out = append(out, evs...)
	}
	if len(out) == 0 {
		return nil, errors.New("no events: the files give none (see above)")
	}
	return out, nil
}

// parseEvents reads ClinicalEvents as proto JSON: one object, an array,
// or one object per line. Errors never quote the content (it is PHI).
func parseEvents(b []byte) ([]*eventsv1.ClinicalEvent, error) {
	var raws []json.RawMessage
	trimmed := bytes.TrimSpace(b)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, errors.New("not a JSON array of ClinicalEvents")
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for {
			var r json.RawMessage
			err := dec.Decode(&r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, errors.New("not ClinicalEvent JSON (FHIR bundles and HL7 files are not read yet: that needs ingest's dry-run mapping)")
			}
			raws = append(raws, r)
		}
	}
	if len(raws) == 0 {
		return nil, errors.New("no events in the file")
	}
	out := make([]*eventsv1.ClinicalEvent, 0, len(raws))
	for i, r := range raws {
		var ev eventsv1.ClinicalEvent
		if err := protojson.Unmarshal(r, &ev); err != nil {
			return nil, fmt.Errorf("event %d is not a ClinicalEvent in proto JSON (FHIR bundles and HL7 files are not read yet)", i+1)
		}
		out = append(out, &ev)
	}
	return out, nil
}

// printSimulation prints, per event, each journey's outcome and the
// messages it would send.
func printSimulation(w io.Writer, resp *journeyv1.SimulateResponse) {
	for _, e := range resp.GetEvents() {
		fmt.Fprintf(w, "event %s (%s):\n", e.GetEventId(), e.GetEvent())
		for _, j := range e.GetJourneys() {
			name := j.GetJourney()
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(w, "  journey %s: %s\n", name, j.GetOutcome())
			for _, m := range j.GetMessages() {
				line := fmt.Sprintf("    %s  step %s  %s  template %s", m.GetSendAt().AsTime().UTC().Format(time.RFC3339), m.GetStep(), m.GetChannel(), m.GetTemplate())
				if m.GetNote() != "" {
					line += "  (" + m.GetNote() + ")"
				}
				fmt.Fprintln(w, line)
			}
		}
	}
}
