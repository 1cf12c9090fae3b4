package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
)

// Kind is the kind of a Problem.
type Kind string

// The problems Verify reports.
const (
	// Deleted: records Seq..ToSeq are missing from the chain.
	Deleted Kind = "deleted"
	// Altered: the message is not the record that was written: its stored
	// Hash is not the hash of its content, it is not in canonical form,
	// it names another chain, or it is not an audit record at all.
	Altered Kind = "altered"
	// Broken: the record's Prev is not the Hash of the record before it.
	Broken Kind = "broken"
	// Reordered: the record's Seq is not above the one before it in the
	// stream (a record moved or replayed).
	Reordered Kind = "reordered"
	// BadSignature: a checkpoint whose signature does not verify.
	BadSignature Kind = "bad-signature"
)

// expirySlack is how recent the first retained record may be for a gap at
// the start of a chain to count as records that aged out of the stream
// (MaxAge) rather than deleted ones. A chain silent for longer than this
// around the retention edge reports its expired records as deleted.
const expirySlack = 31 * 24 * time.Hour

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Problem is one thing wrong with a chain.
type Problem struct {
	Kind Kind
	// Seq is the record concerned (the first of a Deleted range). For a
	// message that cannot be decoded it is the seq it presumably held.
	Seq uint64
	// ToSeq is the last record of a Deleted range; Seq otherwise.
	ToSeq uint64
	// StreamSeq is the message's stream sequence; 0 for Deleted.
	StreamSeq uint64
	// Detail says what exactly is wrong; it holds no record content.
	Detail string
}

// String describes p on one line, e.g. "deleted: records 10..12 missing".
func (p Problem) String() string {
	if p.Kind == Deleted {
		if p.ToSeq > p.Seq {
			return fmt.Sprintf("deleted: records %d..%d missing", p.Seq, p.ToSeq)
		}
		return fmt.Sprintf("deleted: record %d missing", p.Seq)
	}
	return fmt.Sprintf("%s: record %d (stream seq %d): %s", p.Kind, p.Seq, p.StreamSeq, p.Detail)
}

// Checkpoint is a verified checkpoint.
type Checkpoint struct {
	// Seq is the checkpoint record's own seq.
	Seq uint64
	// HeadSeq and HeadHash are the record the checkpoint signs, Seq-1.
	HeadSeq  uint64
	HeadHash string
	Time     time.Time
}

// Report is the result of verifying one chain.
type Report struct {
	Tenant  string
	Service string
	// Records is how many messages the chain holds.
	Records int
	// FirstSeq and LastSeq are the lowest and highest record seq read;
	// Head is the Hash of record LastSeq. An operator who notes Head and
	// LastSeq can later prove the chain was not cut back.
	FirstSeq uint64
	LastSeq  uint64
	Head     string
	// Checkpoints counts checkpoints whose signature verified;
	// Unchecked those not checked because no verify key was given.
	Checkpoints int
	Unchecked   int
	// LastCheckpoint is the last checkpoint that verified and sits in
	// place on an intact link, nil if none.
	LastCheckpoint *Checkpoint
	// Unsealed counts records after LastCheckpoint (all, if none): the
	// part of the chain no signature vouches for.
	Unsealed uint64
	// Expired is the number of leading records that aged out of the
	// stream (records 1..Expired); they are not reported as Deleted.
	Expired  uint64
	Problems []Problem
}

// OK reports whether the chain has no problem.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Count returns how many problems of kind k the report holds.
func (r Report) Count(k Kind) int {
	n := 0
	for _, p := range r.Problems {
		if p.Kind == k {
			n++
		}
	}
	return n
}

// Verify walks the chain of tenant and service in stream order and
// reports every problem it finds. pub verifies checkpoint signatures; with
// a nil pub, checkpoints are counted as Unchecked. The error is for
// failing to read the chain, not for problems in it.
func Verify(ctx context.Context, js jetstream.JetStream, tenant, service string, pub ed25519.PublicKey) (Report, error) {
	if !bus.ValidToken(tenant) || !bus.ValidToken(service) {
		return Report{}, fmt.Errorf("verify: invalid tenant or service")
	}
	s, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return Report{}, fmt.Errorf("audit stream: %w", err)
	}
	return verifyChain(ctx, s, tenant, service, pub)
}

// VerifyAll verifies every chain in the AUDIT stream, ordered by tenant
// then service.
func VerifyAll(ctx context.Context, js jetstream.JetStream, pub ed25519.PublicKey) ([]Report, error) {
	s, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("audit stream: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("audit.>"))
	if err != nil {
		return nil, fmt.Errorf("audit stream info: %w", err)
	}
	subjects := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		subjects = append(subjects, subj)
	}
	slices.Sort(subjects)
	var reps []Report
	for _, subj := range subjects {
		tok := strings.Split(subj, ".")
		if len(tok) != 3 || !bus.ValidToken(tok[1]) || !bus.ValidToken(tok[2]) {
			continue
		}
		rep, err := verifyChain(ctx, s, tok[1], tok[2], pub)
		if err != nil {
			return reps, err
		}
		reps = append(reps, rep)
	}
	return reps, nil
}

func verifyChain(ctx context.Context, s jetstream.Stream, tenant, service string, pub ed25519.PublicKey) (Report, error) {
	c := newChecker(tenant, service, pub)
	err := scan(ctx, s, "audit."+tenant+"."+service, time.Time{}, func(seq uint64, _ string, data []byte) bool {
		c.add(seq, data)
		return true
	})
	if err != nil {
		return Report{}, err
	}
	var maxAge time.Duration
	if info := s.CachedInfo(); info != nil {
		maxAge = info.Config.MaxAge
	}
	return c.finish(time.Now(), maxAge), nil
}

// checker verifies a chain one message at a time, in stream order. It
// holds O(gaps) state, not O(records).
type checker struct {
	rep Report
	pub ed25519.PublicKey

	last     uint64 // highest Seq taken in order
	lastHash string // its Hash
	lostLink bool   // the message before was undecodable: skip the Prev check
	gaps     []gap  // missing ranges so far; a moved record can fill one
}

// gap is a range of missing records with the links around it: before is
// the Hash of record from-1, after the Prev of record to+1.
type gap struct {
	from, to      uint64
	before, after string
	afterTime     time.Time
}

func newChecker(tenant, service string, pub ed25519.PublicKey) *checker {
	return &checker{rep: Report{Tenant: tenant, Service: service}, pub: pub}
}

func (c *checker) problem(k Kind, seq, streamSeq uint64, detail string) {
	c.rep.Problems = append(c.rep.Problems, Problem{Kind: k, Seq: seq, ToSeq: seq, StreamSeq: streamSeq, Detail: detail})
}

// add checks the next message of the chain.
func (c *checker) add(streamSeq uint64, data []byte) {
	c.rep.Records++
	r, altered, ok := c.decode(data)
	if !ok {
		// Presume it took the next place, so one replaced record is not
		// also reported as deleted; its successor's link can't be checked.
		c.last++
		c.lastHash, c.lostLink = "", true
		c.problem(Altered, c.last, streamSeq, "not a decodable audit record")
		return
	}
	if altered != "" {
		c.problem(Altered, r.Seq, streamSeq, altered)
	}
	if c.rep.FirstSeq == 0 || r.Seq < c.rep.FirstSeq {
		c.rep.FirstSeq = r.Seq
	}
	inPlace := false
	switch {
	case r.Seq <= c.last:
		c.misplaced(r, streamSeq)
	case r.Seq > c.last+1:
		c.gaps = append(c.gaps, gap{from: c.last + 1, to: r.Seq - 1, before: c.lastHash, after: r.Prev, afterTime: r.Time})
		c.take(r)
	default:
		switch {
		case c.lostLink:
		case r.Prev != c.lastHash:
			c.problem(Broken, r.Seq, streamSeq, "prev is not the hash of the record before")
		default:
			inPlace = true
		}
		c.take(r)
	}
	if r.Action == ActionCheckpoint {
		c.checkpoint(r, streamSeq, inPlace && altered == "")
	}
}

// take makes r the chain's newest record.
func (c *checker) take(r Record) {
	c.last, c.lastHash, c.lostLink = r.Seq, r.Hash, false
	c.rep.LastSeq, c.rep.Head = r.Seq, r.Hash
}

// misplaced handles a record whose seq is not above the newest one: a
// record moved from a gap (which it then fills, checking its links on
// either side), or a second record with a seq already taken.
func (c *checker) misplaced(r Record, streamSeq uint64) {
	for i, g := range c.gaps {
		if r.Seq < g.from || r.Seq > g.to {
			continue
		}
		c.problem(Reordered, r.Seq, streamSeq, fmt.Sprintf("found after record %d", c.last))
		if r.Seq == g.from && r.Prev != g.before {
			c.problem(Broken, r.Seq, streamSeq, "prev is not the hash of the record before")
		}
		if r.Seq == g.to && r.Hash != g.after {
			c.problem(Broken, r.Seq, streamSeq, "hash is not the prev of the record after")
		}
		var split []gap
		if r.Seq > g.from {
			split = append(split, gap{from: g.from, to: r.Seq - 1, before: g.before, after: r.Prev, afterTime: r.Time})
		}
		if r.Seq < g.to {
			split = append(split, gap{from: r.Seq + 1, to: g.to, before: r.Hash, after: g.after, afterTime: g.afterTime})
		}
		c.gaps = slices.Replace(c.gaps, i, i+1, split...)
		return
	}
	c.problem(Reordered, r.Seq, streamSeq, fmt.Sprintf("seq already taken, found after record %d", c.last))
}

// checkpoint checks a checkpoint record's signature; an intact one in its
// place becomes the last checkpoint.
func (c *checker) checkpoint(r Record, streamSeq uint64, intact bool) {
	if c.pub == nil {
		c.rep.Unchecked++
		return
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	valid := err == nil && r.Object.Type == ObjectAuditChain && r.Object.ID == r.Prev &&
		ed25519.Verify(c.pub, checkpointMessage(r.Tenant, r.Service, r.Seq-1, r.Prev), sig)
	if !valid {
		c.problem(BadSignature, r.Seq, streamSeq, "checkpoint signature does not verify")
		return
	}
	c.rep.Checkpoints++
	if intact {
		c.rep.LastCheckpoint = &Checkpoint{Seq: r.Seq, HeadSeq: r.Seq - 1, HeadHash: r.Prev, Time: r.Time}
	}
}

// decode parses a message. ok is false when it is not an audit record at
// all; altered describes how a record differs from what was written.
func (c *checker) decode(data []byte) (r Record, altered string, ok bool) {
	if err := json.Unmarshal(data, &r); err != nil || r.Seq == 0 {
		return Record{}, "", false
	}
	h, err := r.computeHash()
	if err != nil {
		return Record{}, "", false
	}
	var why []string
	if h != r.Hash {
		why = append(why, "hash does not match content")
	}
	if enc, err := json.Marshal(r); err != nil || !bytes.Equal(enc, data) {
		why = append(why, "not in canonical form")
	}
	if r.Tenant != c.rep.Tenant || r.Service != c.rep.Service {
		why = append(why, "names another chain")
	}
	return r, strings.Join(why, "; "), true
}

// finish reports the gaps left as deletions, except leading records that
// plausibly aged out of a stream with maxAge, and sorts the problems.
func (c *checker) finish(now time.Time, maxAge time.Duration) Report {
	for _, g := range c.gaps {
		if g.from == 1 && maxAge > 0 && g.afterTime.Before(now.Add(-maxAge+expirySlack)) {
			c.rep.Expired = g.to
			continue
		}
		c.rep.Problems = append(c.rep.Problems, Problem{Kind: Deleted, Seq: g.from, ToSeq: g.to})
	}
	sort.SliceStable(c.rep.Problems, func(i, j int) bool {
		return c.rep.Problems[i].Seq < c.rep.Problems[j].Seq
	})
	c.rep.Unsealed = c.rep.LastSeq
	if cp := c.rep.LastCheckpoint; cp != nil {
		c.rep.Unsealed = c.rep.LastSeq - cp.Seq
	}
	return c.rep
}

// checkpointMessage is what a checkpoint signs: the chain and its head.
// Tenant and service are subject tokens, so they hold no newline.
func checkpointMessage(tenant, service string, headSeq uint64, headHash string) []byte {
	return fmt.Appendf(nil, "carenotify-audit-checkpoint/v1\n%s\n%s\n%d\n%s", tenant, service, headSeq, headHash)
}
