package redis

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/redistest"
	"github.com/paygate/paygate/store"
)

// TestReadOnlyStoreWritesNothing: a Store opened with ReadOnly (`paygate
// audit`) reads a deployment's keys and writes none: its Open set the
// epoch marker (and, with an owner, the owner record) under a prefix that
// had none, so a mistyped key_prefix was left holding paygate keys, and
// nothing stopped a write method. Each write method now fails with
// ErrReadOnly before anything is sent, and the keys are as they were.
func TestReadOnlyStoreWritesNothing(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr})
	defer c.Close()

	// A prefix no paygate reached: left without a key.
	for _, owner := range []string{"", "wechatpay:1900000109"} {
		empty := testPrefix()
		ro := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: empty, Owner: owner, ReadOnly: true, EpochInterval: 10 * time.Millisecond})
		if err := ro.Ping(ctx); err != nil {
			t.Fatalf("Ping of a read-only Store (owner %q): %v", owner, err)
		}
		if ok, err := ro.HoldsDeployment(ctx); err != nil || ok {
			t.Errorf("HoldsDeployment of an empty prefix: %v %v; want false", ok, err)
		}
		_ = ro.Close()
		if got := redistest.PrefixState(t, c, empty); len(got) != 0 {
			t.Errorf("a read-only Store (owner %q) left keys under a prefix that had none: %v", owner, redistest.DiffState(nil, got))
		}
	}

	// A marker set after it found none (a deployment started since) is
	// adopted, not taken for a loss; one changed after that is a loss.
	late := testPrefix()
	ro := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: late, ReadOnly: true, EpochInterval: -1})
	if err := c.Set(ctx, late+"{meta:epoch}", "first", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := ro.Ping(ctx); err != nil {
		t.Errorf("Ping once a marker was set after Open found none: %v; want it adopted", err)
	}
	if err := c.Set(ctx, late+"{meta:epoch}", "second", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := ro.Ping(ctx); !errors.Is(err, store.ErrDataLost) {
		t.Errorf("Ping once the adopted marker changed: %v; want store.ErrDataLost", err)
	}
	if v, _ := c.Get(ctx, late+"{meta:epoch}").Result(); v != "second" {
		t.Errorf("the marker is %q after a read-only Store found it changed; want it left as it was", v)
	}

	prefix := testPrefix()
	w := openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix, Owner: "wechatpay:1900000109"})
	if _, _, err := w.ClaimPurchase(ctx, "ro-claim", "RO-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := w.EnqueueEvents(ctx, store.Event{ID: "evt-ro-1", Kind: "audit", Key: "RO-1", Payload: []byte(`{}`), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := w.AppendAudit(ctx, store.AuditRecord{Seq: 1, Hash: "h1", Body: []byte(`{"seq":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := w.PutAuditText(ctx, 1, "bot", "oAlice", []byte("hello"), time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.HoldsDeployment(ctx); err != nil || !ok {
		t.Fatalf("HoldsDeployment of a deployment's prefix: %v %v; want true", ok, err)
	}
	before := redistest.PrefixState(t, c, prefix)

	ro = openOn(t, nil, Options{Addrs: []string{sharedAddr}, KeyPrefix: prefix, ReadOnly: true})
	if err := ro.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// The reads of the audit commands answer as the writer's.
	if h, err := ro.AuditHead(ctx); err != nil || h.Seq != 1 || h.Hash != "h1" {
		t.Errorf("AuditHead: %+v %v", h, err)
	}
	if recs, err := ro.ReadAudit(ctx, 1, 10); err != nil || len(recs) != 1 {
		t.Errorf("ReadAudit: %d records, %v", len(recs), err)
	}
	if n, err := ro.AuditStrayAfterHead(ctx); err != nil || n != 0 {
		t.Errorf("AuditStrayAfterHead: %d %v", n, err)
	}
	if x, err := ro.GetAuditText(ctx, 1); err != nil || string(x) != "hello" {
		t.Errorf("GetAuditText: %q %v", x, err)
	}
	if evs, err := ro.OutboxHeads(ctx, "RO-1"); err != nil || len(evs) != 1 {
		t.Errorf("OutboxHeads: %d %v", len(evs), err)
	}
	if _, err := ro.LoadUserState(ctx, "bot", "oAlice"); err != nil {
		t.Errorf("LoadUserState: %v", err)
	}

	writes := []struct {
		name string
		do   func() error
	}{
		{"AppendAudit", func() error {
			return ro.AppendAudit(ctx, store.AuditRecord{Seq: 2, PrevHash: "h1", Hash: "h2", Body: []byte(`{"seq":2}`)})
		}},
		{"PutAuditText", func() error { return ro.PutAuditText(ctx, 1, "bot", "oAlice", []byte("x"), time.Now(), time.Hour) }},
		{"EraseAuditText", func() error { _, err := ro.EraseAuditText(ctx, "bot", "oAlice"); return err }},
		{"EnqueueEvents", func() error {
			return ro.EnqueueEvents(ctx, store.Event{ID: "evt-ro-2", Kind: "audit", Key: "RO-2", Payload: []byte(`{}`), CreatedAt: time.Now()})
		}},
		{"AckEvent", func() error { return ro.AckEvent(ctx, "RO-1", "evt-ro-1") }},
		{"ClaimPurchase", func() error { _, _, err := ro.ClaimPurchase(ctx, "ro-claim-2", "RO-2", time.Hour); return err }},
		{"GetOrCreateSecret", func() error {
			_, err := ro.GetOrCreateSecret(ctx, "ro-secret", func() ([]byte, error) { return []byte("s"), nil })
			return err
		}},
		{"Repair", func() error { _, err := ro.Repair(ctx); return err }},
	}
	for _, wr := range writes {
		err := wr.do()
		if wr.name == "Repair" && err == nil {
			continue // nothing to repair: it only read
		}
		if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s on a read-only Store: %v; want ErrReadOnly", wr.name, err)
		}
		if errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a read-only Store: %v is store.ErrUnavailable, which callers retry", wr.name, err)
		}
	}
	if d := redistest.DiffState(before, redistest.PrefixState(t, c, prefix)); len(d) > 0 {
		t.Errorf("a read-only Store changed the deployment's keys: %v", d)
	}
}

// TestReadScriptsOnlyRead: the scripts a read-only Store runs call no
// command but those it lets through itself.
func TestReadScriptsOnlyRead(t *testing.T) {
	call := regexp.MustCompile(`redis\.p?call\(\s*([^,)]*)`)
	for i, src := range readScripts {
		ms := call.FindAllStringSubmatch(src, -1)
		if len(ms) == 0 {
			t.Errorf("read script %d calls nothing", i)
		}
		for _, m := range ms {
			name := strings.Trim(m[1], `'"`)
			if name == m[1] || !readCommands[strings.ToLower(name)] {
				t.Errorf("read script %d calls %s, which a read-only Store refuses", i, m[1])
			}
		}
	}
}

// TestReadOnlyStoreReadsAMigratingSlot: on a cluster whose audit slot is
// being moved to another primary (a resharding, redis-cli --cluster
// reshard), a key already moved is answered with an ASK redirection, and
// go-redis follows it with ASKING and the command on the new primary's
// own client. A read-only Store refused that ASKING as a write, so
// `paygate audit verify` failed mid-reshard with "the store is open
// read-only: refused ASKING" though it only read. ASKING changes no key:
// it lets the connection's next command reach an importing slot.
func TestReadOnlyStoreReadsAMigratingSlot(t *testing.T) {
	addrs := startCluster(t)
	ctx := context.Background()
	prefix := testPrefix()
	w := openOn(t, nil, Options{Addrs: addrs, KeyPrefix: prefix, Owner: "wechatpay:1900000109"})
	for seq := uint64(1); seq <= 2; seq++ {
		rec := store.AuditRecord{Seq: seq, Hash: fmt.Sprintf("h%d", seq), Body: []byte(fmt.Sprintf(`{"seq":%d}`, seq))}
		if seq > 1 {
			rec.PrevHash = fmt.Sprintf("h%d", seq-1)
		}
		if err := w.AppendAudit(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	ro := openOn(t, nil, Options{Addrs: addrs, KeyPrefix: prefix, ReadOnly: true})
	if err := ro.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// The audit slot's primary (src) starts moving it to another (dst),
	// and the chain's keys go over: src answers ASK for them from now on.
	nodes := map[string]*goredis.Client{}
	ids := map[string]string{}
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		t.Cleanup(func() { _ = c.Close() })
		id, err := c.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		nodes[a], ids[a] = c, id
	}
	head, rec := prefix+"{audit}:head", prefix+"{audit}:rec"
	slot, err := nodes[addrs[0]].ClusterKeySlot(ctx, head).Result()
	if err != nil {
		t.Fatal(err)
	}
	src := ""
	for _, a := range addrs {
		if n, err := nodes[a].Exists(ctx, head).Result(); err == nil && n == 1 {
			src = a
		}
	}
	if src == "" {
		t.Fatalf("no primary holds %s", head)
	}
	dst := addrs[0]
	if dst == src {
		dst = addrs[1]
	}
	setSlot := func(a string, args ...any) {
		t.Helper()
		if err := nodes[a].Do(ctx, append([]any{"cluster", "setslot", slot}, args...)...).Err(); err != nil {
			t.Fatalf("CLUSTER SETSLOT %d %v on %s: %v", slot, args, a, err)
		}
	}
	setSlot(dst, "importing", ids[src])
	setSlot(src, "migrating", ids[dst])
	t.Cleanup(func() { // the move finished, so that openOn's cleanup finds the keys
		setSlot(dst, "node", ids[dst])
		setSlot(src, "node", ids[dst])
	})
	host, port, _ := strings.Cut(dst, ":")
	// Every key of the slot, as a resharding moves them: beside the chain,
	// the appends' token keys (luaAppendAudit), which the move's end
	// (SETSLOT NODE) refuses to leave behind.
	keys, err := nodes[src].ClusterGetKeysInSlot(ctx, int(slot), 1000).Result()
	if err != nil || !slices.Contains(keys, head) || !slices.Contains(keys, rec) {
		t.Fatalf("keys of slot %d on %s: %v, %v; want %s and %s among them", slot, src, keys, err, head, rec)
	}
	migrate := []any{"migrate", host, port, "", 0, 5000, "keys"}
	for _, k := range keys {
		migrate = append(migrate, k)
	}
	if err := nodes[src].Do(ctx, migrate...).Err(); err != nil {
		t.Fatalf("MIGRATE: %v", err)
	}
	if err := nodes[src].HGet(ctx, head, "seq").Err(); err == nil || !strings.HasPrefix(err.Error(), "ASK ") {
		t.Fatalf("HGET of a moved key on its slot's old primary: %v; want an ASK redirection", err)
	}

	if h, err := ro.AuditHead(ctx); err != nil || h.Seq != 2 || h.Hash != "h2" {
		t.Errorf("AuditHead of a read-only Store while the slot moves: %+v, %v; want seq 2", h, err)
	}
	if recs, err := ro.ReadAudit(ctx, 1, 10); err != nil || len(recs) != 2 {
		t.Errorf("ReadAudit of a read-only Store while the slot moves: %d records, %v; want 2", len(recs), err)
	}
	if n, err := ro.AuditStrayAfterHead(ctx); err != nil || n != 0 {
		t.Errorf("AuditStrayAfterHead of a read-only Store while the slot moves: %d, %v", n, err)
	}
	// A write is still refused, redirected or not.
	err = ro.AppendAudit(ctx, store.AuditRecord{Seq: 3, PrevHash: "h2", Hash: "h3", Body: []byte(`{"seq":3}`)})
	if !errors.Is(err, ErrReadOnly) {
		t.Errorf("AppendAudit of a read-only Store while the slot moves: %v; want ErrReadOnly", err)
	}
	if h, err := w.AuditHead(ctx); err != nil || h.Seq != 2 {
		t.Errorf("the chain's head after the read-only Store's refusals: %+v, %v; want seq 2", h, err)
	}
}
