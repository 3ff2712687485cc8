package audit

import (
	"context"
	"errors"
	"testing"
)

// failAfterErasing erases the texts and then fails, as the Redis store's
// EraseAuditText does when the store goes away between its batches (or
// between the user's two index sets): it reports the texts it erased with
// the error.
type failAfterErasing struct{ Store }

func (f failAfterErasing) EraseAuditText(ctx context.Context, client, user string) (int, error) {
	n, err := f.Store.EraseAuditText(ctx, client, user)
	if err != nil {
		return n, err
	}
	return n, errors.New("erase audit text: connection reset by peer")
}

// TestEraseRecordedWhenTheStoreFailsPartway: texts an erasure removed before
// the store failed are recorded as erased in the chain all the same. They
// are gone whatever the error; without their audit.text_erased record,
// `paygate audit verify -text` reported each as removed without erasure, an
// auditor's sign of tampering, and the admin was told 0 texts were erased.
func TestEraseRecordedWhenTheStoreFailsPartway(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			st := aliceAndBob(t, driver)
			w := newTestWorker(t, failAfterErasing{Store: st}, nil)
			n, err := w.Erase(context.Background(), "shop-bot", "oAlice")
			if err == nil {
				t.Fatalf("erase: %d, no error; want the store's error", n)
			}
			if n != 2 {
				t.Errorf("erase: %d texts reported erased with the error; want the 2 the store erased", n)
			}
			wantAliceErased(t, st, "an erasure the store failed partway")
		})
	}
}
