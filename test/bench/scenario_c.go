package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/deploy/devstack/devca"
	"github.com/carenotify/carenotify/deploy/devstack/inbox"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
	"github.com/carenotify/carenotify/pkg/grpcx"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
)

// Scenario c's sizes.
const (
	channelSends   = 50000
	channelSmoke   = 500
	channelWorkers = 20
	channelSenders = 32
	channelSubject = "Your appointment reminder"
	channelBody    = "Hello,\r\n\r\nThis is a reminder of your appointment at the clinic tomorrow at 09:30.\r\nPlease arrive ten minutes early. Reply to this message if you need to reschedule.\r\n\r\nThe clinic team\r\n"
)

// EmailChannel is scenario c: 50,000 sends through the email service's
// gRPC Send to the sink, against Listmonk sending the same campaign. The
// Listmonk leg runs only when a build is found at cfg.ListmonkBin.
func EmailChannel(ctx context.Context, cfg Config) *Scenario {
	sc := &Scenario{ID: "c", Title: "email channel: 50,000 sends (gRPC Send) → SMTP sink, 20 connections"}
	if err := runChannel(ctx, cfg, sc); err != nil {
		sc.Status = "failed: " + err.Error()
		return sc
	}
	if fi, err := os.Stat(cfg.ListmonkBin); cfg.ListmonkBin == "" || err != nil || fi.IsDir() {
		sc.Notes = append(sc.Notes, "Ceiling skipped: no Listmonk build found at $LISTMONK_BIN; no ratio.")
	} else {
		sc.Notes = append(sc.Notes, "Ceiling skipped: the Listmonk leg is not written yet; no ratio.")
	}
	return sc
}

func runChannel(ctx context.Context, cfg Config, sc *Scenario) error {
	n := channelSends
	if cfg.Smoke {
		n = channelSmoke
	}
	varDir := filepath.Join(cfg.TmpDir, "scenario-c")
	ca, err := devca.Ensure(filepath.Join(varDir, "certs"), []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		return err
	}
	sink := inbox.New()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := sink.NewSMTPServer(l.Addr().String(), ca.ServerTLS, true, nil)
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	grpcAddr := gl.Addr().String()
	_ = gl.Close()

	cfg.logf("c: starting the stack (builds the services)")
	s, err := stack.Start(ctx, stack.Options{
		Root: cfg.Root, VarDir: varDir, FreePorts: true,
		ExtraEnv: map[string][]string{"email": {
			"EMAIL_SMTP_PORT=" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port),
			"EMAIL_WORKERS=" + strconv.Itoa(channelWorkers),
			"EMAIL_GRPC_ADDR=" + grpcAddr,
		}},
	})
	if err != nil {
		return err
	}
	defer s.Stop()
	pid := Children()["email"]

	tag := newRunTags().next()
	var (
		mu            sync.Mutex
		first, last   time.Time
		got           int
		arrivedAll    = make(chan struct{})
		arrivedClosed bool
		probeSeen     atomic.Bool
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		_, _ = sink.Wait(watchCtx, func(m inbox.Message) bool {
			if len(m.To) == 1 && m.To[0] == RecipientFor(tag+"p") {
				probeSeen.Store(true)
			}
			if len(m.To) != 1 || !strings.HasPrefix(m.To[0], "bench."+tag+"x") {
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			if first.IsZero() || m.ReceivedAt.Before(first) {
				first = m.ReceivedAt
			}
			if m.ReceivedAt.After(last) {
				last = m.ReceivedAt
			}
			got++
			if got >= n && !arrivedClosed {
				arrivedClosed = true
				close(arrivedAll)
			}
			return false
		})
	}()

	cc, err := grpcx.NewClient(grpcAddr, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer cc.Close()
	email := emailv1.NewEmailServiceClient(cc)
	send := func(ctx context.Context, id string) error {
		_, err := email.Send(ctx, &emailv1.SendRequest{
			Tenant: stack.DemoTenant, IdempotencyKey: "bench-c-" + id, To: RecipientFor(id),
			Subject: channelSubject, TextBody: channelBody, Security: emailv1.Security_SECURITY_NO_PHI,
			ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		})
		return err
	}
	// Wait until gRPC answers (the stack's readiness is HTTP's).
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if err = send(pctx, tag+"p"); err == nil {
			break
		}
		if pctx.Err() != nil {
			return fmt.Errorf("probe Send: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Let the probe arrive, then start the count afresh.
	for !probeSeen.Load() {
		if pctx.Err() != nil {
			return fmt.Errorf("probe: no email (see %s)", s.LogDir)
		}
		time.Sleep(20 * time.Millisecond)
	}

	cfg.logf("c: system, %d sends over gRPC from %d callers, EMAIL_WORKERS=%d", n, channelSenders, channelWorkers)
	cpu0, _ := CPUTime(pid)
	var (
		next     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	var queuedAt time.Time
	for range channelSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n || ctx.Err() != nil {
					return
				}
				if err := send(ctx, tag+"x"+strconv.Itoa(i)); err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
				}
			}
		}()
	}
	wg.Wait()
	queuedAt = time.Now()
	limit := 10 * time.Minute
	if cfg.Smoke {
		limit = time.Minute
	}
	select {
	case <-arrivedAll:
	case <-time.After(limit):
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu1, _ := CPUTime(pid)
	rss := procRSS(pid)
	mu.Lock()
	arrived, f, la := got, first, last
	mu.Unlock()
	if e := errs.Load(); e > 0 {
		return fmt.Errorf("%d Send errors, first: %v", e, firstErr.Load())
	}
	if arrived < n {
		return fmt.Errorf("%d of %d emails arrived within %s of the last Send", arrived, n, limit)
	}
	tput := float64(arrived-1) / la.Sub(f).Seconds()
	row := Row{Leg: "system", Load: fmt.Sprintf("%s gRPC Sends, EMAIL_WORKERS=%d", fmtCount(float64(n)), channelWorkers),
		Throughput: tput, Runs: 1, Ops: int64(arrived),
		CPU: map[string]time.Duration{"email": (cpu1 - cpu0) * 1000 / time.Duration(n)}}
	sc.Rows = append(sc.Rows, row)
	sc.System = Figure{Value: tput, Unit: "messages/s", What: "first to last message stored by the sink"}
	sc.Latency = fmt.Sprintf("time to first message %s (first Send → first message stored); all %s Sends accepted in %s; last message at %s",
		f.Sub(start).Round(time.Millisecond), fmtCount(float64(n)), queuedAt.Sub(start).Round(time.Millisecond), la.Sub(start).Round(time.Millisecond))
	sc.Notes = append(sc.Notes,
		"Not pre-queued: the email service has no pause and the harness does not stall the relay, so workers deliver while the Sends are still being queued; time to first message and throughput are measured from the first Send.",
		fmt.Sprintf("The development stack runs (stack.Start, FreePorts) with email given EMAIL_WORKERS=%d, its own EMAIL_GRPC_ADDR and the harness's sink (the development inbox's SMTP server with STARTTLS, as in scenario b); SMTP sessions are kept open by the workers (up to 100 messages each).", channelWorkers),
		fmt.Sprintf("%d callers invoke carenotify.email.v1.EmailService/Send with the generated client over plaintext gRPC on loopback, distinct idempotency keys and recipients, the same %d-byte text body and subject for every message, security NO_PHI.", channelSenders, len(channelBody)),
		fmt.Sprintf("Throughput: (messages − 1) / (last − first) sink store time. Email process: %.2f CPU s per 10k messages (utime+stime from /proc/<pid>/stat over the whole Send + delivery), RSS %s at the end (VmRSS).", (cpu1-cpu0).Seconds()*10000/float64(n), fmtBytes(rss)),
	)
	return nil
}

// procRSS returns a process's VmRSS in bytes, or 0 where unknown.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
