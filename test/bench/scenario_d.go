package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Scenario d's loads: HL7 senders keep one message in flight per
// connection.
var mllpConns = []int{1, 8}

// hl7Corpus are the corpus messages scenario d sends, relative to
// ../shared/corpus/hl7v2 beside the checkout.
var hl7Corpus = []string{"ADT_A01/msconv-ADT-A01-01.hl7", "ORU_R01/msconv-LAB-ORU-1.hl7"}

// HL7 runs scenario d: HL7 v2 ADT^A01 and ORU^R01 messages from the
// shared corpus sent over MLLP to an ingest process, which acknowledges
// after JetStream stored the events, against the ceiling of an MLLP server
// in the harness that acknowledges every frame at once.
func HL7(ctx context.Context, cfg Config, ingestBin string) *Scenario {
	sc := &Scenario{ID: "d", Title: "HL7 v2 ADT^A01 / ORU^R01 over MLLP → ingest → durable publish → ACK"}
	dir := filepath.Join(cfg.Root, "..", "shared", "corpus", "hl7v2")
	var msgs []*HL7Message
	for _, name := range hl7Corpus {
		m, err := LoadHL7(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			sc.Status = "skipped: the HL7 v2 corpus is not at " + filepath.Clean(dir)
			return sc
		}
		if err != nil {
			sc.Status = "failed: " + err.Error()
			return sc
		}
		msgs = append(msgs, m)
	}
	if err := runHL7(ctx, cfg, ingestBin, msgs, sc); err != nil {
		sc.Status = "failed: " + err.Error()
	}
	return sc
}

func runHL7(ctx context.Context, cfg Config, ingestBin string, msgs []*HL7Message, sc *Scenario) error {
	env, err := startIngestBench(ctx, ingestBin, filepath.Join(cfg.TmpDir, "scenario-d"), false)
	if err != nil {
		return err
	}
	defer env.Close()
	tags := newRunTags()

	// Probe each message once: it must be accepted and store events; the
	// first one's ACK is the ceiling's template.
	probe, err := NewMLLPClient(ctx, env.ing.MLLPAddr, 1)
	if err != nil {
		return err
	}
	var ackTmpl []byte
	var ackID string
	for i, m := range msgs {
		before, err := env.events(ctx)
		if err != nil {
			return err
		}
		id := tags.next() + "x0"
		ack, err := probe.Send(ctx, m.Frame(id))
		if err != nil {
			probe.Close()
			return fmt.Errorf("probe %s: %w", m.Type, err)
		}
		after, err := env.events(ctx)
		if err != nil {
			probe.Close()
			return err
		}
		if after == before {
			probe.Close()
			return fmt.Errorf("probe %s: accepted but no event stored", m.Type)
		}
		if i == 0 {
			ackTmpl, ackID = ack, id
		}
		sc.Notes = append(sc.Notes, fmt.Sprintf("%s: %d bytes framed, %d event(s) stored per message, ACK %d bytes.", m.Type, m.Size(len(id)), after-before, len(ack)+3))
	}
	probe.Close()

	// Ceiling: an MLLP server that acknowledges at once, the first
	// message's real ACK with the control id filled in.
	echo, err := StartMLLPEcho(ackTmpl, ackID)
	if err != nil {
		return err
	}
	defer echo.Close()
	harness := series{cfg: cfg, meter: cpuMeter{"harness": 0}}
	first := msgs[0]
	for i, conns := range mllpConns {
		cfg.logf("d: ceiling, MLLP echo, %d connection(s)", conns)
		row, err := mllpSeries(ctx, harness, i == 0, echo.Addr(), conns, first, tags)
		if err != nil {
			return err
		}
		row.Leg, row.Load = "ceiling", fmt.Sprintf("MLLP echo with ACK (%s), closed, %d connection(s)", first.Type, conns)
		sc.Rows = append(sc.Rows, row)
		if conns == mllpConns[len(mllpConns)-1] {
			sc.Ceiling = Figure{Value: row.Throughput, Unit: "ACKs/s", What: fmt.Sprintf("MLLP echo, %d connections", conns)}
		}
	}

	system := series{cfg: cfg, meter: cpuMeter{"ingest": env.ing.Pid, "harness": 0}, before: env.purge}
	for mi, m := range msgs {
		for i, conns := range mllpConns {
			cfg.logf("d: system, %s, %d connection(s)", m.Type, conns)
			row, err := mllpSeries(ctx, system, mi == 0 && i == 0, env.ing.MLLPAddr, conns, m, tags)
			if err != nil {
				return err
			}
			row.Leg, row.Load = "system", fmt.Sprintf("%s, closed, %d connection(s)", m.Type, conns)
			sc.Rows = append(sc.Rows, row)
			if mi == 0 && conns == mllpConns[len(mllpConns)-1] {
				sc.System = Figure{Value: row.Throughput, Unit: "messages/s", What: fmt.Sprintf("%s, %d connections", m.Type, conns)}
			}
			if mi == 0 && conns == 1 {
				sc.Latency = row.Percentiles() + fmt.Sprintf(" (%s, 1 connection, send → ACK)", m.Type)
			}
		}
	}
	sc.Notes = append(sc.Notes,
		"Messages come from the shared corpus (../shared/corpus/hl7v2), each sent with its own MSH-10 control id and its own visit or order number (PV1-19, OBR-2/3), so every message is a new resource whose first sight is a transition: nothing dedupes. Each message reads and writes the resource's last-seen state in Redis (lock, read, write) around the durable publish. Ingest runs alone against the harness's embedded NATS server, as in scenario a; it seals and audits each event before the ACK.",
		fmt.Sprintf("Closed loops only: a connection carries one message at a time, as MLLP senders do, so latency is send → ACK service time. Runs of %s after a %s warm-up; the ratio is %s at %d connections over the echo at %d.", cfg.RunTime, cfg.WarmUp, first.Type, mllpConns[len(mllpConns)-1], mllpConns[len(mllpConns)-1]),
	)
	return nil
}

// mllpSeries measures closed loops of conns MLLP connections sending m.
func mllpSeries(ctx context.Context, s series, warm bool, addr string, conns int, m *HL7Message, tags *runTags) (Row, error) {
	client, err := NewMLLPClient(ctx, addr, conns)
	if err != nil {
		return Row{}, err
	}
	defer client.Close()
	runs, cpu, err := s.run(ctx, warm, func(ctx context.Context, d time.Duration) LoadResult {
		tag := tags.next()
		return ClosedLoop(ctx, conns, d, func(ctx context.Context, seq int64) error {
			_, err := client.Send(ctx, m.Frame(tag+"x"+strconv.FormatInt(seq, 10)))
			return err
		})
	})
	if err != nil {
		return Row{}, err
	}
	row := Summarize("", "", runs)
	row.CPU, row.HistName = cpu, "frame sent → ACK read (service time)"
	return row, nil
}
