package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/store"
)

func TestParseHead(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cases := []struct {
		name    string
		in      string
		want    store.AuditHead
		wantErr bool
	}{
		{name: "seq and hash", in: "42:" + hash, want: store.AuditHead{Seq: 42, Hash: hash}},
		{name: "upper-case hash", in: "7:" + strings.ToUpper(hash), want: store.AuditHead{Seq: 7, Hash: hash}},
		{name: "empty chain", in: "0:", want: store.AuditHead{}},
		{name: "spaces trimmed", in: " 3:" + hash + "\n", want: store.AuditHead{Seq: 3, Hash: hash}},
		{name: "no colon", in: "42", wantErr: true},
		{name: "bad seq", in: "x:" + hash, wantErr: true},
		{name: "short hash", in: "42:abcd", wantErr: true},
		{name: "non-hex hash", in: "42:" + strings.Repeat("zz", 32), wantErr: true},
		{name: "seq without hash", in: "5:", wantErr: true},
		// Record 0 is the empty chain's head, which has no hash: taken
		// as a head, it matched no record and verify said it was on the
		// chain.
		{name: "hash without a record", in: "0:" + hash, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseHead(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("ParseHead(%q): err %v; want error %v", c.in, err, c.wantErr)
			}
			if err == nil && got != c.want {
				t.Errorf("ParseHead(%q) = %+v; want %+v", c.in, got, c.want)
			}
			if err == nil {
				back, err := ParseHead(FormatHead(got))
				if err != nil || back != got {
					t.Errorf("round trip: %+v %v", back, err)
				}
			}
		})
	}
}

// lineSink hands each log line to a channel.
type lineSink chan string

func (l lineSink) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// TestPublishHead: the head is logged and set in paygate_audit_head_seq at
// once and again after every interval, so a new record shows up.
func TestPublishHead(t *testing.T) {
	e := newEnv(t, "embedded")
	recs := buildChain(t, e, 2)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(lineSink, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		PublishHead(ctx, e.store(), 5*time.Millisecond, m, slog.New(slog.NewJSONHandler(lines, nil)))
	}()
	type line struct {
		Msg  string `json:"msg"`
		Seq  uint64 `json:"seq"`
		Hash string `json:"hash"`
		Head string `json:"head"`
	}
	next := func() line {
		t.Helper()
		select {
		case s := <-lines:
			var l line
			if err := json.Unmarshal([]byte(s), &l); err != nil {
				t.Fatalf("log line %q: %v", s, err)
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no head published")
		}
		return line{}
	}
	first := next()
	if first.Msg != "audit head" || first.Seq != 2 || first.Hash != recs[1].Hash || first.Head != FormatHead(store.AuditHead{Seq: 2, Hash: recs[1].Hash}) {
		t.Errorf("first line: got %+v; want head 2:%s", first, recs[1].Hash)
	}
	if got := testutil.ToFloat64(m.head); got != 2 {
		t.Errorf("paygate_audit_head_seq: got %v; want 2", got)
	}
	enqueue(t, e.store(), mustEvent(t, Action{Name: "order.paid", User: "oAlice", OrderNo: "PG9"}, ""))
	drainAll(t, newTestWorker(t, e.store(), nil))
	for l := next(); l.Seq != 3; l = next() {
		if l.Seq != 2 {
			t.Fatalf("published seq %d; want 2 then 3", l.Seq)
		}
	}
	cancel()
	for stopped := false; !stopped; {
		select {
		case <-lines: // a publish in flight may still write
		case <-done:
			stopped = true
		}
	}
	if got := testutil.ToFloat64(m.head); got != 3 {
		t.Errorf("paygate_audit_head_seq: got %v; want 3", got)
	}
	if n, err := testutil.GatherAndCount(reg, "paygate_audit_head_seq"); err != nil || n != 1 {
		t.Errorf("registered gauge: %d %v", n, err)
	}
}

// TestHeadInfoMetricCarriesHash: SPEC 7 publishes the head, sequence and
// hash, in a metric. paygate_audit_head_info{seq,hash} 1 is one series, the
// latest head, set by the publisher and by the worker's appends: a scraped
// metric catches a last record replaced by a forged one (same sequence,
// other hash), which the sequence gauge alone cannot.
func TestHeadInfoMetricCarriesHash(t *testing.T) {
	e := newEnv(t, "embedded")
	recs := buildChain(t, e, 2)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	info := func() []string {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range mfs {
			if mf.GetName() != "paygate_audit_head_info" {
				continue
			}
			for _, mt := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range mt.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				out = append(out, fmt.Sprintf("%s:%s=%v", l["seq"], l["hash"], mt.GetGauge().GetValue()))
			}
		}
		return out
	}
	if got := info(); len(got) != 0 {
		t.Errorf("before any publish: %v; want no series", got)
	}
	// One publish, awaited by its log line: a 50ms context once bounded
	// the publisher instead, and a stall of that long on a loaded CI
	// machine ended the context before the head was read.
	lines := make(lineSink, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		PublishHead(ctx, e.store(), time.Hour, m, slog.New(slog.NewJSONHandler(lines, nil)))
	}()
	select {
	case <-lines:
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing
		t.Fatal("no head published")
	}
	cancel()
	<-done
	if got, want := info(), []string{"2:" + recs[1].Hash + "=1"}; !slices.Equal(got, want) {
		t.Errorf("after publishing: %v; want %v", got, want)
	}
	enqueue(t, e.store(), mustEvent(t, Action{Name: "order.paid", User: "oAlice", OrderNo: "PG9"}, ""))
	drainAll(t, newTestWorker(t, e.store(), func(o *WorkerOptions) { o.Metrics = m }))
	h, err := e.store().AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info(), []string{"3:" + h.Hash + "=1"}; h.Seq != 3 || !slices.Equal(got, want) {
		t.Errorf("after an append: %v; want only %v", got, want)
	}
}

// TestPublishHeadAtAnyLogLevel: the head line is one of the outside records
// `paygate audit verify --head` checks a cut from the end against (SPEC 7:
// published in the log, a metric and the admin API), so log.level warn or
// error, set to quieten the log, must not drop it: it was logged at info,
// and an operator who set log.level: warn had no head in the log at all.
func TestPublishHeadAtAnyLogLevel(t *testing.T) {
	e := newEnv(t, "embedded")
	recs := buildChain(t, e, 1)
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelError} {
		t.Run(level.String(), func(t *testing.T) {
			lines := make(lineSink, 16)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				PublishHead(ctx, e.store(), time.Hour, nil, logging.New(lines, level, nil))
			}()
			defer func() { cancel(); <-done }()
			select {
			case s := <-lines:
				want := FormatHead(store.AuditHead{Seq: 1, Hash: recs[0].Hash})
				if !strings.Contains(s, `"msg":"audit head"`) || !strings.Contains(s, `"head":"`+want+`"`) {
					t.Errorf("log line %q; want the audit head %s", s, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no head in the log at level %s", level)
			}
		})
	}
}

// TestPublishHeadNotMasked: the log's redactor masks every configured
// secret of 4 bytes or more wherever it appears, and a short one of hex
// digits (an admin token "2024", a Redis password "cafe") appears now and
// then in a head's hash or sequence number: the head line then read
// "[REDACTED]" where the hash was, and that outside record of the chain
// was lost. A hash and a sequence number hold no secret; the line carries
// them as they are.
func TestPublishHeadNotMasked(t *testing.T) {
	e := newEnv(t, "embedded")
	recs := buildChain(t, e, 1)
	want := FormatHead(store.AuditHead{Seq: 1, Hash: recs[0].Hash})
	for _, secret := range []string{recs[0].Hash[20:26], recs[0].Hash[:4]} {
		t.Run(secret, func(t *testing.T) {
			lines := make(lineSink, 16)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				PublishHead(ctx, e.store(), time.Hour, nil, logging.New(lines, slog.LevelInfo, []string{secret}))
			}()
			defer func() { cancel(); <-done }()
			select {
			case s := <-lines:
				if !strings.Contains(s, `"head":"`+want+`"`) || !strings.Contains(s, `"hash":"`+recs[0].Hash+`"`) {
					t.Errorf("log line %q; want the audit head %s unmasked", s, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no head in the log")
			}
		})
	}
}

// heldHead is an audit store whose AuditHead reads the head, hands it to
// read and answers it only once release is closed: the publisher's read
// and its publication, with whatever the test does in between.
type heldHead struct {
	store.Audit
	read    chan store.AuditHead
	release chan struct{}
}

func (h heldHead) AuditHead(ctx context.Context) (store.AuditHead, error) {
	hd, err := h.Audit.AuditHead(ctx)
	h.read <- hd
	<-h.release
	return hd, err
}

// TestPublishHeadNeverMovesBack: PublishHeadNow reads the head, then
// publishes it; the worker publishes each record it appends. A record
// appended between the two had the publisher set the head it read before,
// and paygate_audit_head_seq went from 3 back to 2 (an alert on its
// decrease fired on a healthy chain), the info metric too. A head older
// than the one published is not published: the gauge, the info metric and
// the "audit head" line keep the newest.
func TestPublishHeadNeverMovesBack(t *testing.T) {
	e := newEnv(t, "embedded")
	buildChain(t, e, 2)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(lineSink, 4)
	st := heldHead{Audit: e.store(), read: make(chan store.AuditHead), release: make(chan struct{})}
	published := make(chan error, 1)
	go func() {
		published <- PublishHeadNow(context.Background(), st, m, slog.New(slog.NewJSONHandler(lines, nil)))
	}()
	if old := <-st.read; old.Seq != 2 {
		t.Fatalf("publisher read head %d; want 2", old.Seq)
	}
	// The worker appends record 3 while the publisher holds head 2.
	enqueue(t, e.store(), mustEvent(t, Action{Name: "order.paid", User: "oAlice", OrderNo: "PG9"}, ""))
	drainAll(t, newTestWorker(t, e.store(), func(o *WorkerOptions) { o.Metrics = m }))
	h, err := e.store().AuditHead(context.Background())
	if err != nil || h.Seq != 3 {
		t.Fatalf("head after the append: %+v %v; want seq 3", h, err)
	}
	if got := testutil.ToFloat64(m.head); got != 3 {
		t.Fatalf("paygate_audit_head_seq after the append: %v; want 3", got)
	}
	close(st.release)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.head); got != 3 {
		t.Errorf("paygate_audit_head_seq after the publisher's late set: %v; want 3, never back to 2", got)
	}
	if info, ok := m.headInfo.get(); !ok || info != h {
		t.Errorf("paygate_audit_head_info %+v; want %+v", info, h)
	}
	var l struct {
		Msg  string `json:"msg"`
		Seq  uint64 `json:"seq"`
		Head string `json:"head"`
	}
	if err := json.Unmarshal([]byte(<-lines), &l); err != nil {
		t.Fatal(err)
	}
	if l.Msg != "audit head" || l.Seq != 3 || l.Head != FormatHead(h) {
		t.Errorf("logged %+v; want the head published, %s", l, FormatHead(h))
	}
}

// TestSetHeadIsMonotonic: within a process the published head only moves
// on; one at the same sequence with another hash (a last record replaced)
// is published, as TestHeadInfoMetricCarriesHash needs.
func TestSetHeadIsMonotonic(t *testing.T) {
	hd := func(seq uint64, c string) store.AuditHead {
		return store.AuditHead{Seq: seq, Hash: strings.Repeat(c, 64)}
	}
	tests := []struct {
		name string
		sets []store.AuditHead
		want store.AuditHead
	}{
		{"forward", []store.AuditHead{hd(1, "a"), hd(2, "b"), hd(5, "c")}, hd(5, "c")},
		{"a late older head", []store.AuditHead{hd(2, "a"), hd(3, "b"), hd(2, "a")}, hd(3, "b")},
		{"the empty chain after one", []store.AuditHead{hd(4, "a"), {}}, hd(4, "a")},
		{"same seq, other hash", []store.AuditHead{hd(3, "a"), hd(3, "f")}, hd(3, "f")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics()
			var got store.AuditHead
			for _, h := range tc.sets {
				got = m.setHead(h)
			}
			if got != tc.want {
				t.Errorf("setHead returned %+v; want %+v", got, tc.want)
			}
			if g := testutil.ToFloat64(m.head); g != float64(tc.want.Seq) {
				t.Errorf("paygate_audit_head_seq %v; want %d", g, tc.want.Seq)
			}
			if h, _ := m.headInfo.get(); h != tc.want {
				t.Errorf("head info %+v; want %+v", h, tc.want)
			}
		})
	}
}
