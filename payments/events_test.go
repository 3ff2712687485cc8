package payments_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/payments/wxsim"
	"github.com/paygate/paygate/store"
)

// TestEventsCommitWithTransitions: the events Options.Events returns are in
// the store's outbox with the transition that produced them.
func TestEventsCommitWithTransitions(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver, service: func(o *payments.Options) {
				o.Events = func(tr payments.Transition) []store.Event {
					return []store.Event{{ID: tr.After.OrderNo + ":" + string(tr.After.Status), Kind: "audit", Key: tr.After.OrderNo, Payload: []byte(tr.Cause)}}
				}
			}})
			o := e.create("oUser-events", 1)
			if _, err := e.sim.Pay(context.Background(), o.OrderNo); err != nil {
				t.Fatal(err)
			}
			ob, ok := e.st.(store.Outbox)
			if !ok {
				t.Fatalf("%s driver has no outbox", driver)
			}
			var ids []string
			for range 5 {
				due, err := ob.DueEvents(context.Background(), time.Now().Add(time.Hour), 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(due) == 0 {
					break
				}
				for _, ev := range due {
					ids = append(ids, ev.ID)
					if err := ob.AckEvent(context.Background(), ev.Key, ev.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := []string{o.OrderNo + ":creating", o.OrderNo + ":awaiting_payment", o.OrderNo + ":paid"}
			if len(ids) != len(want) {
				t.Fatalf("events: got %v; want %v", ids, want)
			}
			for i := range want {
				if ids[i] != want[i] {
					t.Errorf("event %d: got %s; want %s", i, ids[i], want[i])
				}
			}
		})
	}
}

// TestNotifyDuringKeyMigration: with the public key and the platform
// certificate both configured, notifications signed with either are applied.
func TestNotifyDuringKeyMigration(t *testing.T) {
	e := newEnv(t, envOptions{}) // ClientConfig configures both keys
	ctx := context.Background()
	a := e.create("oUser-migrate-a", 1)
	b := e.create("oUser-migrate-b", 1)
	e.sim.SetSigningMode(wxsim.SignCertificate)
	if d, err := e.sim.Pay(ctx, a.OrderNo); err != nil || !d.Acked {
		t.Fatalf("certificate-signed: %+v %v", d, err)
	}
	e.sim.SetSigningMode(wxsim.SignPublicKey)
	if d, err := e.sim.Pay(ctx, b.OrderNo); err != nil || !d.Acked || d.LastStatus != http.StatusNoContent {
		t.Fatalf("public-key-signed: %+v %v", d, err)
	}
	for _, no := range []string{a.OrderNo, b.OrderNo} {
		if s := e.order(no).Status; s != store.StatusPaid {
			t.Errorf("%s: got %s; want paid", no, s)
		}
	}
}
