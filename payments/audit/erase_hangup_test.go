package audit

import (
	"context"
	"testing"
)

// hangUpDuringErase ends the erasure's context as soon as the store has
// erased the texts: the admin client that asked for the erasure hung up
// (its HTTP timeout, a closed terminal) while it ran.
type hangUpDuringErase struct {
	Store
	cancel context.CancelFunc
}

func (h hangUpDuringErase) EraseAuditText(ctx context.Context, client, user string) (int, error) {
	n, err := h.Store.EraseAuditText(ctx, client, user)
	h.cancel()
	return n, err
}

// TestEraseRecordedWhenTheCallerHangsUp: an erasure whose caller goes away
// once the texts are erased still records the erasure in the chain. The
// texts are gone either way; without their audit.text_erased record,
// `paygate audit verify -text` reported each of them as removed without
// erasure, an auditor's sign of tampering, for a lawful erasure. A money
// action, once started, runs to its end whatever the caller does; so does
// the erasure and its record.
func TestEraseRecordedWhenTheCallerHangsUp(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			st := aliceAndBob(t, driver)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := newTestWorker(t, hangUpDuringErase{Store: st, cancel: cancel}, nil)
			n, err := w.Erase(ctx, "shop-bot", "oAlice")
			t.Logf("erase: %d %v", n, err)
			wantAliceErased(t, st, "an erasure whose caller hung up")
		})
	}
}

// aliceAndBob is a store of driver holding buildChain(4)'s chain: texts
// of oAlice (records 1, 3) and oBob (2, 4) under shop-bot.
func aliceAndBob(t *testing.T, driver string) Store {
	t.Helper()
	e := newEnv(t, driver)
	buildChain(t, e, 4)
	return e.store()
}

// wantAliceErased checks, after Run's next pass, that `verify -text` of
// buildChain(4)'s chain passes with oAlice's 2 texts erased (after what)
// and oBob's 2 checked.
func wantAliceErased(t *testing.T, st Store, after string) {
	t.Helper()
	drainAll(t, newTestWorker(t, st, nil)) // the next pass of Run
	res, err := Verify(context.Background(), st, VerifyOptions{Texts: true})
	if err != nil {
		t.Fatalf("verify -text after %s: %v", after, err)
	}
	if res.TextsGone != 2 || res.TextsChecked != 2 {
		t.Errorf("verify: %+v; want oAlice's 2 texts erased, oBob's 2 checked", res)
	}
}
