package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// bearerToken sends "authorization: Bearer <token>" with every call. The
// admin API is reached over plaintext gRPC on an operators' network (or
// a TLS-terminating proxy), so it does not require transport security.
type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }

// adminTimeout bounds one admin API call.
const adminTimeout = 2 * time.Minute

// newTraceCmd builds `carenotifyctl trace`: every decision about one
// patient, from the journey service's AdminService.Trace.
func newTraceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace <patient-id|patient-ref|message-id>",
		Short: "Show every decision about a patient: why they did or did not get a message",
		Long: `Show, oldest first, every decision the audit trail holds about one patient:
events received, journeys started or not (and why), steps planned, messages
sent (with the consent record that allowed them) or suppressed (no consent,
quiet hours, frequency cap, unreachable, cancelled, time passed), and what
the channel did with each message.

The argument is a message id (a UUID, as the email service answers), the
patient's reference in the audit trail (64 hex digits), or else the
patient's FHIR logical id; --as says which when the guess would be wrong.
The patient id is sent in the request body only and shown masked.`,
		Example: `  carenotifyctl trace --tenant demo p-123
  carenotifyctl trace --tenant demo 0193f1c2-7a3b-7c4d-9e5f-0123456789ab`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			tenant, _ := f.GetString("tenant")
			as, _ := f.GetString("as")
			asJSON, _ := f.GetBool("json")
			if tenant == "" {
				return fmt.Errorf("--tenant is required")
			}
			req, err := traceRequest(tenant, args[0], as)
			if err != nil {
				return err
			}
			client, closeConn, err := adminConnect(cmd)
			if err != nil {
				return err
			}
			defer closeConn()
			ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
			defer cancel()
			resp, err := client.Trace(ctx, req)
			if err != nil {
				return adminError(err)
			}
			if asJSON {
				return printProtoJSON(cmd.OutOrStdout(), resp)
			}
			return printTrace(cmd.OutOrStdout(), tenant, describeSubject(req), resp)
		},
	}
	f := cmd.Flags()
	f.String("tenant", envOr("CARENOTIFY_TENANT", ""), "tenant (env CARENOTIFY_TENANT)")
	f.String("as", "", "what the argument is: patient, ref or message (default: guessed)")
	f.Bool("json", false, "print the TraceResponse as JSON")
	return cmd
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	refRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// traceRequest builds the request for arg, which as names (patient, ref
// or message) or which is guessed: a UUID is a message id, 64 hex digits
// a patient reference, anything else a patient id.
func traceRequest(tenant, arg, as string) (*journeyv1.TraceRequest, error) {
	if as == "" {
		switch {
		case uuidRE.MatchString(arg):
			as = "message"
		case refRE.MatchString(arg):
			as = "ref"
		default:
			as = "patient"
		}
	}
	req := &journeyv1.TraceRequest{Tenant: tenant}
	switch as {
	case "patient":
		req.Subject = &journeyv1.TraceRequest_PatientId{PatientId: arg}
	case "ref":
		req.Subject = &journeyv1.TraceRequest_PatientRef{PatientRef: arg}
	case "message":
		req.Subject = &journeyv1.TraceRequest_MessageId{MessageId: arg}
	default:
		return nil, fmt.Errorf("--as must be patient, ref or message")
	}
	return req, nil
}

// describeSubject names what was traced, the patient id masked.
func describeSubject(req *journeyv1.TraceRequest) string {
	switch s := req.GetSubject().(type) {
	case *journeyv1.TraceRequest_PatientId:
		return "patient " + maskID(s.PatientId)
	case *journeyv1.TraceRequest_PatientRef:
		return "patient ref " + shortHash(s.PatientRef)
	case *journeyv1.TraceRequest_MessageId:
		return "the patient of message " + s.MessageId
	}
	return "?"
}

// maskID shows an identifier's first character and length only.
func maskID(id string) string {
	if id == "" {
		return "-"
	}
	return id[:1] + strings.Repeat("*", len(id)-1)
}

// printTrace prints the timeline: one line per decision, time (UTC),
// service and what it means.
func printTrace(w io.Writer, tenant, subject string, resp *journeyv1.TraceResponse) error {
	fmt.Fprintf(w, "Trace of %s in tenant %s (audit ref %s): %d entries\n\n", subject, tenant, shortHash(resp.GetPatientRef()), len(resp.GetEntries()))
	if len(resp.GetEntries()) == 0 {
		fmt.Fprintln(w, "The audit trail holds nothing about this patient (in this time range).")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tSERVICE\tWHAT HAPPENED")
	for _, e := range resp.GetEntries() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.GetTime().AsTime().UTC().Format("2006-01-02 15:04:05"), e.GetService(), e.GetSummary())
	}
	return tw.Flush()
}

// adminConnect dials the journey service's AdminService, sending the
// --token (CARENOTIFY_TOKEN) with every call.
func adminConnect(cmd *cobra.Command) (journeyv1.AdminServiceClient, func(), error) {
	addr, _ := cmd.Flags().GetString("journey-addr")
	token, _ := cmd.Flags().GetString("token")
	if token == "" {
		// Read here, not as the flag's default, so --help never shows it.
		token = os.Getenv("CARENOTIFY_TOKEN")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(token)))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("journey admin API at %s: %w", addr, err)
	}
	return journeyv1.NewAdminServiceClient(cc), func() { _ = cc.Close() }, nil
}

// adminError turns an admin API status into an error that says the code,
// the message and each field at fault.
func adminError(err error) error {
	st := status.Convert(err)
	msg := fmt.Sprintf("%s: %s", st.Code(), st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				msg += fmt.Sprintf("\n  %s: %s", v.GetField(), v.GetDescription())
			}
		}
	}
	return fmt.Errorf("%s", msg)
}

// printProtoJSON prints m as indented protojson.
func printProtoJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
