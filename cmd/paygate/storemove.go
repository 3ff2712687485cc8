package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/payments/webhook"
	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/embedded"
	redisstore "github.com/paygate/paygate/store/redis"
)

// liveStatuses are the order states only the store an order is in settles:
// its sweep closes or pays the payable and held ones at their deadlines,
// finishes the refunds in flight, and an operator resolves the ones in
// review through its admin API. Started on another store, paygate knows
// none of them: a payment made on one is an orphan there (the merchant
// never gets order.paid), and the same purchase asked again gets a second
// payable order.
var liveStatuses = []struct {
	status store.OrderStatus
	name   string
}{
	{store.StatusCreating, "being created"},
	{store.StatusAwaitingPayment, "payable"},
	{store.StatusApprovalRequired, "held for approval"},
	{store.StatusRefunding, "with a refund in flight"},
	{store.StatusNeedsReview, "in review"},
}

// storeLive is what a store holds that only paygate running on it settles
// or sends: orders by live status, and the outbox's undelivered events
// (webhooks, audit records not yet in the chain).
type storeLive struct {
	orders map[store.OrderStatus]int
	events int
	oldest time.Time // the oldest undelivered event's
	// dead are the webhooks the relay gave up on (webhook.DeadPrefix):
	// each stays until its order is resent on this store.
	dead int
}

func (l storeLive) drained() bool {
	for _, n := range l.orders {
		if n > 0 {
			return false
		}
	}
	return l.events == 0 && l.dead == 0
}

func (l storeLive) String() string {
	var parts []string
	for _, s := range liveStatuses {
		if n := l.orders[s.status]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%s)", n, s.name, s.status))
		}
	}
	if l.events > 0 {
		parts = append(parts, fmt.Sprintf("%d undelivered events (webhooks, audit records), the oldest from %s", l.events, l.oldest.UTC().Format(time.RFC3339)))
	}
	if l.dead > 0 {
		parts = append(parts, fmt.Sprintf("%d webhooks given up (dead letters: resend their orders, POST /admin/api/orders/{order_no}/webhook)", l.dead))
	}
	if len(parts) == 0 {
		return "drained: no order payable, held, refunding, in review or being created, no event undelivered and no webhook given up"
	}
	return strings.Join(parts, ", ")
}

// countLive reads what st holds live. Orphan payments (in review without
// a client: no order of this paygate's) are left out, since no resolution
// takes them out of review and they are settled on the merchant platform.
func countLive(ctx context.Context, st store.Store) (storeLive, error) {
	l := storeLive{orders: map[store.OrderStatus]int{}}
	for _, s := range liveStatuses {
		f := store.OrderFilter{Status: s.status, Limit: store.MaxListLimit}
		for {
			page, err := st.ListOrders(ctx, f)
			if err != nil {
				return l, fmt.Errorf("listing %s orders: %w", s.status, err)
			}
			for _, o := range page {
				if o.Status == s.status && !(s.status == store.StatusNeedsReview && o.Client == "") {
					l.orders[s.status]++
				}
			}
			if len(page) < f.Limit {
				break
			}
			last := page[len(page)-1]
			f.Before, f.BeforeOrderNo = last.CreatedAt, last.OrderNo
		}
	}
	stats, dead, err := st.OutboxStatsApart(ctx, webhook.DeadPrefix)
	if err != nil {
		return l, fmt.Errorf("reading the outbox: %w", err)
	}
	l.events, l.oldest, l.dead = stats.Pending, stats.Oldest, dead
	return l, nil
}

// otherStoreFiles are the embedded store files cfg does not serve on but
// can see: store.path under the Redis driver (it stays in the config, and
// is where a deployment that scaled out kept its state), and the default
// path under an embedded store.path moved elsewhere.
func otherStoreFiles(cfg *config.Config) []string {
	switch {
	case cfg.Store.Driver == "redis":
		return []string{cfg.Store.Path}
	case cfg.Store.Driver == "embedded" && !samePath(cfg.Store.Path, config.DefaultStorePath):
		return []string{config.DefaultStorePath}
	}
	return nil
}

func samePath(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	aa, _ := filepath.Abs(a)
	ab, _ := filepath.Abs(b)
	return aa == ab
}

// errLeftState refuses a start on a store while the embedded file this
// deployment served on before still holds live state.
var errLeftState = errors.New("the store this deployment served on before still holds live state")

// checkLeftStores refuses to start when an embedded file cfg can see but
// does not serve on (otherStoreFiles) belongs to this deployment (owner)
// and holds live state (countLive): started, paygate would answer for none
// of it. A file it cannot read (in use by a running paygate, written by
// an earlier version) is logged and passed.
func checkLeftStores(cfg *config.Config, log *slog.Logger, owner string) error {
	if err := checkLeftRedis(cfg, log, owner); err != nil {
		return err
	}
	for _, p := range otherStoreFiles(cfg) {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
			continue
		}
		db, err := embedded.Open(p, embedded.Options{SweepInterval: -1, Logger: log, ReadOnly: true})
		if err != nil {
			log.Warn("another store file is here, and could not be read to tell whether it still holds orders this deployment must settle: check it with `paygate store status` under the config that served on it",
				"path", p, "err", err)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		was, err := db.Owner(ctx)
		var live storeLive
		if err == nil && (was == "" || was == owner) {
			live, err = countLive(ctx, db)
		}
		cancel()
		_ = db.Close()
		switch {
		case err != nil:
			log.Warn("another store file is here, and could not be read to tell whether it still holds orders this deployment must settle", "path", p, "err", err)
		case was != "" && was != owner:
			// Another merchant's file: not this deployment's to settle.
		case !live.drained():
			return fmt.Errorf("%w: the embedded file %s holds %s, which paygate on %s would know nothing of (a payment of a payable order would be an orphan, the merchant never told order.paid; the same purchase asked again would get a second order; undelivered webhooks never sent). "+
				"Drain it first: start again with the config that served on it until `paygate store status` with that config says drained (see Moving to another store in the README). "+
				"To abandon that state knowingly, move the file away", errLeftState, p, live, where(cfg))
		}
	}
	return nil
}

// checkLeftRedis is checkLeftStores of the Redis store cfg names, for a
// deployment that scales back in to an embedded file not made yet, or
// kept and not written since Redis's newest order: Redis is asked
// (read-only, as a tool) whether this deployment served there and left
// live state. A Redis that does not answer, or where no deployment
// or another one served, passes in silence: a first start without Redis
// is the common case.
func checkLeftRedis(cfg *config.Config, log *slog.Logger, owner string) error {
	if cfg.Store.Driver != "embedded" {
		return nil
	}
	// A simulator whose config names no Redis is not asked about the one
	// that may answer at the default address (a developer's, a CI
	// runner's shared by its tests): whatever simulator state is there,
	// no restarted simulator can be paid for it (it keeps its orders in
	// memory), and the README's first command must not depend on it.
	if cfg.Payments.Backend == "simulator" && cfg.Store.Redis.AddrsDefaulted {
		return nil
	}
	// A store.path not made yet is a first start on it. One that is
	// there (the file kept when the deployment scaled out, as Moving to
	// another store says) is asked about too, against its last write
	// below: Redis's state newer than it is a scaling back in to it.
	var written time.Time
	if fi, err := os.Stat(cfg.Store.Path); err == nil {
		written = fi.ModTime()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// A Redis nobody listens for (a first start on a host without one)
	// costs go-redis's dial retries, most of a second: one plain dial
	// tells first.
	reachable := false
	for _, addr := range cfg.Store.Redis.Addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			reachable = true
			break
		}
	}
	if !reachable {
		return nil
	}
	o := redisOptions(cfg, slog.New(slog.DiscardHandler))
	o.ReadOnly, o.RepairInterval, o.MaxRetries, o.NoWait = true, -1, -1, true
	st, err := redisstore.Open(o)
	if err != nil {
		return nil
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	was, err := st.Owner(ctx)
	if err != nil || was != owner {
		return nil
	}
	if !written.IsZero() {
		// The file written since Redis's newest order (served on since,
		// or touched to leave Redis's state behind knowingly) has been
		// this deployment's store since: not a scaling back in.
		newest, err := st.ListOrders(ctx, store.OrderFilter{Limit: 1})
		if err != nil || len(newest) == 0 || !newest[0].CreatedAt.After(written) {
			return nil
		}
	}
	live, err := countLive(ctx, st)
	if err != nil {
		log.Warn("this deployment served on Redis, and it could not be read to tell whether it still holds orders this deployment must settle: check it with `paygate store status` under the config that served on it",
			"err", err)
		return nil
	}
	if !live.drained() {
		return fmt.Errorf("%w: %s holds %s, which paygate on the embedded file %s would know nothing of (a payment of a payable order would be an orphan, the merchant never told order.paid; the same purchase asked again would get a second order; undelivered webhooks never sent). "+
			"Drain it first: start again with the config that served on it until `paygate store status` with that config says drained (see Moving to another store in the README). "+
			"To abandon that state knowingly, touch %s (create it empty, or mark the file kept as written now) before starting",
			errLeftState, redisWhere(cfg), live, cfg.Store.Path, cfg.Store.Path)
	}
	return nil
}

// where names the store cfg serves on.
func where(cfg *config.Config) string {
	if cfg.Store.Driver == "redis" {
		return redisWhere(cfg)
	}
	return "the embedded file " + cfg.Store.Path
}

// redisWhere names the Redis store cfg's store.redis names.
func redisWhere(cfg *config.Config) string {
	r := cfg.Store.Redis
	return fmt.Sprintf("Redis at %s (key prefix %q, db %d)", strings.Join(r.Addrs, ","), r.KeyPrefix, r.DB)
}

// cmdStore is `paygate store status`: whether the config's store still
// holds live state (countLive), exit 0 when drained, 3 when not, 1 when it
// cannot be read.
func cmdStore(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, storeUsage)
		return 2
	case args[0] == "help" && len(args) > 1 && !strings.HasPrefix(args[1], "-"):
		// `paygate store help status` is status's flags, as `paygate
		// audit help verify` gives verify's.
		return cmdStore([]string{args[1], "-h"}, stdout, stderr)
	case args[0] == "help" || isHelp(args[0]):
		fmt.Fprint(stdout, storeUsage)
		return 0
	case args[0] != "status":
		if msg, moved := flagsBeforeSubCommand("store", args); moved {
			fmt.Fprintln(stderr, msg)
			return 2
		}
		fmt.Fprintf(stderr, "paygate store: unknown command %q\n\n%s", args[0], storeUsage)
		return 2
	}
	fs := flag.NewFlagSet("store status", flag.ContinueOnError)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args[1:], stdout, stderr); !ok {
		return code
	}
	if !noArguments(fs, stderr) || emptyConfig(fs, *path, stderr) {
		return 2
	}
	st, cfg, code := openToolStore("store status", "see what is left with GET /admin/api/orders?status=awaiting_payment (and approval_required, refunding, needs_review) and GET /admin/api/webhooks", *path, stderr)
	if code != 0 {
		return code
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	live, err := countLive(ctx, st)
	if err != nil {
		fmt.Fprintln(stderr, "paygate store status:", logging.NewRedactor(cfg.Secrets()).String(err.Error()))
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", where(cfg), live)
	if !live.drained() {
		return 3
	}
	return 0
}

const storeUsage = `Usage: paygate store status [-config FILE]

Reports whether the config's store still holds state only paygate running
on it settles: orders payable, held for approval, with a refund in flight,
in review or being created, and undelivered events (webhooks, audit
records). Exit 0 when drained, 3 when not, 1 when the store cannot be read.
The embedded file is read while no paygate runs on it.
`
