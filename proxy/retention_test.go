package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/logging/logtest"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/proxy/h1/h1test"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
	"github.com/paygate/paygate/store/testdrivers"
)

// TestPlainTurnsKeepOneExpiringRecordPerConversation: a year of a chatty
// bot whose users never buy must not grow the store per request. Plain
// turns (payment tools offered, none called, priced so that the ledger
// keeps each conversation's cost) of many users, several turns each and
// two conversations for some, leave one record per conversation (its
// cost, for the order it may lead to) and nothing else, and every one of
// them expires: on Redis each new key carries a TTL no longer than the
// ledger's 30 days (and a minute of grace), so a Redis under maxmemory
// holds the active conversations, not the requests; on the embedded file
// the sweep deletes every one of them once that time has passed. A turn
// that starts writing a record per request, or one without expiry (a
// dedupe mark, a state cache), fails here.
func TestPlainTurnsKeepOneExpiringRecordPerConversation(t *testing.T) {
	const users, turns = 40, 3
	const keep = 30*24*time.Hour + time.Minute // the ledger's sessionTTL and the drivers' grace
	for _, driver := range testdrivers.Names(t) {
		t.Run(driver, func(t *testing.T) {
			var skew atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			place := testdrivers.NewPlace(t, driver, now)
			st := place.Open()
			keysBefore := map[string]bool{}
			var rc *redisstore.Store
			if driver == "redis" {
				rc = st.(*redisstore.Store)
				for _, k := range prefixKeys(t, rc, place.Prefix) {
					keysBefore[k] = true
				}
			}

			fp := newFakeProvider(t, jsonHandler(http.StatusOK, `{"id":"c1","object":"chat.completion","created":1,"model":"vendor/upstream-model",`+
				`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],`+
				`"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`))
			cfg := pricedConfig(t, fp.URL)
			_, svc := newSimPayments(t, st, simPayments{Catalog: []payments.CatalogItem{{SKU: "premium-monthly", Name: "Premium", Price: "49.99", MaxQuantity: 12}}})
			srv, ledger := ledgerServer(t, cfg, st, Options{Tools: simTools(svc), Reconciler: svc})

			conversations := 0
			for u := range users {
				sessions := []string{""} // the user's own: X-Paygate-Session absent
				if u%4 == 0 {
					sessions = append(sessions, "chat-2")
				}
				conversations += len(sessions)
				for _, session := range sessions {
					for range turns {
						hdr := map[string]string{"X-WeChat-OpenID": fmt.Sprintf("o-chatty-%d", u)}
						if session != "" {
							hdr["X-Paygate-Session"] = session
						}
						resp := post(t, srv.URL, "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, hdr)
						body := readAll(t, resp.Body)
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("turn: %d %s", resp.StatusCode, body)
						}
					}
				}
			}
			ledger.Flush()

			switch driver {
			case "redis":
				ctx := context.Background()
				var added int
				for _, k := range prefixKeys(t, rc, place.Prefix) {
					if keysBefore[k] {
						continue
					}
					added++
					ttl, err := rc.Client().PTTL(ctx, k).Result()
					if err != nil {
						t.Fatal(err)
					}
					if ttl <= 0 || ttl > keep {
						t.Errorf("key %q written by plain turns has TTL %v; want one, at most %v", k, ttl, keep)
					}
				}
				if added != conversations {
					t.Errorf("%d turns each of %d conversations added %d keys; want one per conversation", turns, conversations, added)
				}
			case "embedded":
				db := st.(*embedded.DB)
				ctx := context.Background()
				if n, err := db.Sweep(ctx); err != nil || n != 0 {
					t.Fatalf("sweep before anything expired: %d, %v", n, err)
				}
				skew.Store(int64(keep))
				n, err := db.Sweep(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n != conversations {
					t.Errorf("the sweep %v later deleted %d records; want the %d conversations' costs, every record the turns wrote", keep, n, conversations)
				}
			}
		})
	}
}

// prefixKeys lists the keys under prefix.
func prefixKeys(t *testing.T, st *redisstore.Store, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	iter := st.Client().Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ledgerServer serves a Server over cfg and st with a real failover Router
// and accounting Ledger beside it, as the binary wires them; opts gives the
// payment seams (Tools, Reconciler, UserPayments), the rest is filled here.
// The retention tests flush the ledger it returns before reading the store.
func ledgerServer(t *testing.T, cfg *config.Config, st store.Store, opts Options) (*h1test.Server, *accounting.Ledger) {
	t.Helper()
	log := logging.New(&logtest.Buffer{}, slog.LevelDebug, cfg.Secrets())
	reg := prometheus.NewRegistry()
	router, err := failover.New(cfg, failover.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Close() })
	ledger, err := accounting.New(cfg, st, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ledger.Close)
	opts.Config, opts.Upstream, opts.Logger, opts.Registry = cfg, router, log, reg
	opts.HashKey, opts.State, opts.Ledger = []byte(cfg.Privacy.HashKey), st, ledger
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := h1test.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, ledger
}
