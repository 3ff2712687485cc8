package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paygate/paygate/store"
)

// TestEraseOfAUserNotInUTF8: a bot may name its end user in another
// encoding than UTF-8 (a GBK nickname in X-WeChat-OpenID: 张三 is
// D5 C5 C8 FD), and the admin erases that user as the bot named it
// (DELETE /admin/api/audit/texts/%D5%C5%C8%FD). The records and texts hold
// the user as their JSON form carries it (each byte that is not UTF-8 a
// U+FFFD), so the erasure must reach them under that form: erasing under
// the raw bytes erased none of the user's texts, answered 0, and the
// erasure's outbox event, keyed by the raw user, could never be
// acknowledged (its key read back from the store is the JSON form), so the
// worker's pass appended it, found it again, and never ended.
func TestEraseOfAUserNotInUTF8(t *testing.T) {
	const gbkUser = "\xd5\xc5\xc8\xfd"
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			ctx := context.Background()
			st := e.store()
			for _, u := range []string{gbkUser, "oBob"} {
				a := Action{Time: time.Now(), Name: "order.created", Client: "shop-bot", User: u,
					OrderNo: "PG-" + map[string]string{gbkUser: "1", "oBob": "2"}[u], AmountFen: 4999, Currency: "CNY"}
				enqueue(t, st, mustEvent(t, a, `[{"role":"user","content":"buy"}]`))
			}
			w := newTestWorker(t, st, nil)
			drainAll(t, w)

			n, err := w.Erase(ctx, "shop-bot", gbkUser)
			if err != nil || n != 1 {
				t.Errorf("erase: got %d %v; want the user's 1 text", n, err)
			}
			if _, err := st.GetAuditText(ctx, 1); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the user's text after the erasure: got %v; want ErrNotFound", err)
			}
			// A pass ends once nothing is due: bounded, so that one that
			// never ends fails here rather than hangs.
			dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if _, err := w.Drain(dctx); err != nil {
				t.Fatalf("drain after the erasure: %v; want a pass that ends", err)
			}
			if s, err := st.OutboxStats(ctx); err != nil || s.Pending != 0 {
				t.Errorf("outbox after the erasure: %+v %v; want its record acknowledged", s, err)
			}
			res, err := Verify(ctx, st, VerifyOptions{Texts: true})
			if err != nil || res.Records != 3 || res.TextsGone != 1 || res.TextsChecked != 1 {
				t.Errorf("verify: %+v %v; want 3 records, the user's text erased, oBob's checked", res, err)
			}
		})
	}
}
