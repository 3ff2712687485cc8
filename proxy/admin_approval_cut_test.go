package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
)

// heldApproval is an AdminPayments whose Approve, once started, waits for
// release (its prepay at WeChat Pay), and whose order, read by number, is
// now (nil: the read fails).
type heldApproval struct {
	AdminPayments
	started chan struct{}
	release chan struct{}
	now     *store.Order
}

func (h heldApproval) Approve(_ context.Context, no string) (*payments.CreateResult, error) {
	close(h.started)
	<-h.release
	return &payments.CreateResult{Order: &store.Order{OrderNo: no, Status: store.StatusAwaitingPayment}}, nil
}

func (h heldApproval) OrderByNumber(context.Context, string) (*store.Order, error) {
	if h.now == nil {
		return nil, store.ErrUnavailable
	}
	return h.now, nil
}

// TestAdminApprovalCutByTheDrainDeadline: a manager's approval still
// running when the drain's deadline comes is answered then, a 503
// server_shutdown in the admin API's error format, saying what the order
// as it stands shows: approved, its prepay not yet answered (creating), or
// not yet recorded (still awaiting approval, or unread), and never
// "approved, but " when it may not be. It was waited for, and its
// connection closed under it at the whole shutdown_timeout.
func TestAdminApprovalCutByTheDrainDeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		now      store.OrderStatus // "": the order's read fails
		approved bool
		want     string // in the error
	}{
		{"at its prepay", store.StatusCreating, true, "reconciler asks WeChat Pay"},
		{"before it was recorded", store.StatusApprovalRequired, false, "approve it again if it still awaits approval"},
		{"its order unread", "", false, "approve it again if it still awaits approval"},
		// Its prepay answered and recorded between the cut and the read:
		// the approval was made, and "Could not approve" of an order
		// that left the queue approved sent the manager to approve it
		// again.
		{"its prepay answered meanwhile", store.StatusAwaitingPayment, true, "the order is awaiting_payment now"},
		{"closed after its approval", store.StatusClosed, true, "the order is closed now"},
		{"rejected by another manager", store.StatusRejected, false, "the order is rejected now"},
		{"expired", store.StatusExpired, false, "the order is expired now"},
		// needs_review, which an order awaiting approval reaches
		// without one too (payments' state.go): nothing says it was.
		{"held for review", store.StatusNeedsReview, false, "the order is needs_review now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
			log := slog.New(slog.DiscardHandler)
			router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = router.Close() })
			pay := heldApproval{started: make(chan struct{}), release: make(chan struct{})}
			defer close(pay.release)
			if tc.now != "" {
				pay.now = &store.Order{OrderNo: "PG1", Status: tc.now}
			}
			s, err := New(Options{Config: cfg, Upstream: router, Logger: log, AdminPayments: pay})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			s.MountAdminAPI(mux)
			h, cut := shutdownCut(mux)
			srv := h1test.NewServer(h)
			t.Cleanup(srv.Close)
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/admin/api/approvals/PG1/approve", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+auditAdminToken)
			done := cutOnceStarted(req, pay.started, cut)
			var a cutAnswer
			select {
			case a = <-done:
			case <-time.After(10 * time.Second):
				// The server's Close, at the whole shutdown_timeout, is
				// not here: an approval waited for is never answered.
				t.Fatal("the approval cut by the drain deadline was not answered within 10s; want an answer at once")
			}
			if a.err != nil {
				t.Fatalf("the approval cut by the drain deadline: %v (read %q); want an answer", a.err, a.body)
			}
			body := gjson.Parse(a.body)
			msg := body.Get("error").Str
			if a.code != http.StatusServiceUnavailable || body.Get("code").Str != "server_shutdown" ||
				!strings.Contains(msg, "shutting down") || !strings.Contains(msg, tc.want) {
				t.Fatalf("%d %s; want a 503 server_shutdown saying %q", a.code, a.body, tc.want)
			}
			if got := strings.HasPrefix(msg, "approved, but "); got != tc.approved {
				t.Errorf("error %q begins \"approved, but \": %v; want %v", msg, got, tc.approved)
			}
			if got := body.Get("order.status").Str; got != string(tc.now) {
				t.Errorf("the answer's order %s; want it as it stands (%q)", body.Get("order").Raw, tc.now)
			}
		})
	}
}

// hungOrderRead is a heldApproval whose order, read by number, is not
// answered (a Redis that stopped answering) until the read's context ends
// or the test does; it sends the read's deadline (zero: none).
type hungOrderRead struct {
	heldApproval
	deadline chan time.Time
}

func (h hungOrderRead) OrderByNumber(ctx context.Context, _ string) (*store.Order, error) {
	d, _ := ctx.Deadline()
	h.deadline <- d
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.release:
		return nil, store.ErrUnavailable
	}
}

// TestAdminApprovalCutReadsTheOrderWithinTheCut: the order an approval
// cut by the drain's deadline is answered with is read within what the
// drain keeps back for the answers (CutReserve): with a store that does
// not answer, the operator still gets the 503 server_shutdown saying the
// approval is not known to be recorded, before the connection is closed.
// The read had no deadline of its own, and the answer waited on it until
// the whole shutdown_timeout had passed and the connection was closed
// under it, as before approvalCut.
func TestAdminApprovalCutReadsTheOrderWithinTheCut(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", func(c *config.Config) { c.Admin.Token = auditAdminToken })
	log := slog.New(slog.DiscardHandler)
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	pay := hungOrderRead{heldApproval{started: make(chan struct{}), release: make(chan struct{})}, make(chan time.Time, 1)}
	defer close(pay.release)
	s, err := New(Options{Config: cfg, Upstream: router, Logger: log, AdminPayments: pay})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.MountAdminAPI(mux)
	h, cut := shutdownCut(mux)
	srv := h1test.NewServer(h)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/admin/api/approvals/PG1/approve", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+auditAdminToken)
	done := cutOnceStarted(req, pay.started, cut)
	reserve := CutReserve(cfg.Server.ShutdownTimeout.D())
	cutAt := time.Now()
	if d := <-pay.deadline; d.IsZero() || d.Sub(cutAt) > reserve {
		t.Errorf("the order of the approval cut was read with deadline %v, %v after the cut; want one within the cut's reserve, %v", d, d.Sub(cutAt), reserve)
	}
	var a cutAnswer
	select {
	case a = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the approval cut by the drain deadline, its order's read hung, was not answered within 10s; want an answer within the cut's reserve")
	}
	if a.err != nil {
		t.Fatalf("the approval cut by the drain deadline: %v (read %q); want an answer", a.err, a.body)
	}
	body := gjson.Parse(a.body)
	msg := body.Get("error").Str
	if a.code != http.StatusServiceUnavailable || body.Get("code").Str != "server_shutdown" ||
		!strings.Contains(msg, "before this approval was known to be recorded") || !strings.Contains(msg, "approve it again") || strings.HasPrefix(msg, "approved, but ") || body.Get("order").Exists() {
		t.Errorf("%d %s; want a 503 server_shutdown saying the approval is not known to be recorded, without an order", a.code, a.body)
	}
}
