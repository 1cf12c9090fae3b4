package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/carenotify/carenotify/pkg/audit"
)

// Keyword is what an inbound text asks for.
type Keyword string

// Keywords, as Twilio's default opt-out handling and the CTIA guidelines
// define them. The whole message must be the keyword (any case, spaces
// and trailing punctuation ignored): "Stop." opts out, "please stop
// texting on Sunday" does not.
const (
	KeywordStop  Keyword = "stop"  // STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT
	KeywordStart Keyword = "start" // START, UNSTOP, YES
	KeywordHelp  Keyword = "help"  // HELP, INFO
	KeywordOther Keyword = "other" // anything else: not stored, not answered
)

var keywords = map[string]Keyword{
	"STOP": KeywordStop, "STOPALL": KeywordStop, "UNSUBSCRIBE": KeywordStop, "CANCEL": KeywordStop,
	"END": KeywordStop, "QUIT": KeywordStop,
	"START": KeywordStart, "UNSTOP": KeywordStart, "YES": KeywordStart,
	"HELP": KeywordHelp, "INFO": KeywordHelp,
}

// ParseKeyword returns the keyword body is.
func ParseKeyword(body string) Keyword {
	w := strings.TrimRightFunc(strings.TrimSpace(body), func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSpace(r) })
	if k, ok := keywords[strings.ToUpper(w)]; ok {
		return k
	}
	return KeywordOther
}

// Inbound is a text a patient sent to one of our numbers. From and Body
// are PHI.
type Inbound struct {
	// ProviderID is the provider's id of the inbound message (Twilio
	// MessageSid). Not PHI; the evidence of a keyword.
	ProviderID string
	// From is the patient's number. PHI.
	From string
	// To is our number (or messaging service SID) it was sent to.
	To string
	// Body is the text. PHI.
	Body string
}

// Replies are the texts answering keywords. They go to the patient's
// number and must not carry PHI.
type Replies struct {
	Stop, Start, Help string
}

// Hasher computes the keyed hash of a number (*phone.Hasher).
type Hasher interface {
	Hash(tenant, number string) string
}

// KeywordsOptions configure Keywords.
type KeywordsOptions struct {
	Events  Events
	Auditor Auditor
	Hasher  Hasher
	Logger  *slog.Logger
	// Tenant returns the tenant whose sender to is; false when none.
	Tenant func(to string) (string, bool)
	// Replies are sent back as TwiML; an empty reply sends none (e.g.
	// when Twilio's Advanced Opt-Out answers keywords itself).
	Replies Replies
	Now     func() time.Time
}

// Keywords handles inbound texts: STOP and START become opted_out and
// opted_in events, which the journey service turns into SMS consent.
type Keywords struct {
	o KeywordsOptions
}

// NewKeywords returns Keywords.
func NewKeywords(o KeywordsOptions) *Keywords {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Keywords{o: o}
}

// keywordNamespace makes the event's message id a function of the
// provider's id, so a webhook Twilio posts twice publishes one event.
var keywordNamespace = uuid.MustParse("6f1d3c2e-9a41-5b7e-8c0d-2f4a6b8e1c3d")

// Handle classifies in and, for STOP and START, publishes an opted_out or
// opted_in DeliveryEvent on delivery.<tenant>.sms.<status> carrying the
// keyed hash of the number (never the number) and the inbound message's
// SID as evidence, and audits it, before it returns. It returns the
// keyword and the reply to send ("" for none). The error (NATS or the
// audit trail failed; nothing is acknowledged) means the provider should
// retry; it carries no PHI.
func (k *Keywords) Handle(ctx context.Context, in Inbound) (Keyword, string, error) {
	kw := ParseKeyword(in.Body)
	tenant, ok := k.o.Tenant(in.To)
	log := k.o.Logger.With("providerId", in.ProviderID, "keyword", string(kw))
	if !ok {
		log.Warn("inbound text to a number no tenant sends from; ignored")
		return kw, "", nil
	}
	log = log.With("tenant", tenant)
	var st Status
	switch kw {
	case KeywordStop:
		st = StatusOptedOut
	case KeywordStart:
		st = StatusOptedIn
	case KeywordHelp:
		log.Info("sms help keyword")
		return kw, k.o.Replies.Help, nil
	default:
		// Not a keyword: free text is PHI, and no one reads it here.
		log.Info("inbound text is not a keyword; not kept")
		return kw, "", nil
	}
	id := uuid.NewSHA1(keywordNamespace, []byte(tenant+"|"+in.ProviderID)).String()
	hash := k.o.Hasher.Hash(tenant, in.From)
	now := k.o.Now()
	err := k.o.Auditor.Record(ctx, audit.Entry{
		Tenant: tenant, Actor: audit.Actor{Type: audit.ActorService, ID: "sms"},
		Action: ActionKeyword, Object: audit.Object{Type: "SMSInbound", ID: id},
		Outcome: audit.OutcomeSuccess, Reason: string(st),
	})
	if err != nil {
		return kw, "", fmt.Errorf("audit sms keyword: %w", err)
	}
	ev := Event{
		MessageID: id, Tenant: tenant, Status: st, OccurredAt: now,
		ProviderID: in.ProviderID, RecipientHash: hash,
	}
	if err := k.o.Events.Publish(ctx, ev); err != nil {
		return kw, "", fmt.Errorf("publish %s: %w", st, err)
	}
	log.Info("sms keyword recorded", "status", string(st), "messageId", id)
	if st == StatusOptedOut {
		return kw, k.o.Replies.Stop, nil
	}
	return kw, k.o.Replies.Start, nil
}

// ActionKeyword is the audit action of an SMS keyword (STOP, START).
const ActionKeyword = "sms.keyword"
