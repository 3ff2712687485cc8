package redis

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
	"github.com/paygate/paygate/store/storetest"
)

// arrivals creates orders through st right after the first read of an
// order index: new orders arriving while a list reads the index a batch at
// a time.
type arrivals struct {
	st    *Store
	fired atomic.Bool
	make  func(ctx context.Context) error
	err   chan error
}

func (a *arrivals) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (a *arrivals) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if strings.EqualFold(cmd.Name(), "zrevrangebyscore") && a.fired.CompareAndSwap(false, true) {
			a.err <- a.make(ctx)
		}
		return err
	}
}

func (a *arrivals) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestListOrdersWhileOrdersArrive: a list whose filter skips most of the
// index (a client's orders among every client's) reads the index a batch
// at a time; orders created meanwhile, newer than all, move every entry
// down. Read by offset, the next batch began with entries the first had
// read: the page listed an order twice in place of the next one, so an
// accountant counting a client's orders page by page counted one twice.
func TestListOrdersWhileOrdersArrive(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	st := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	base := clock.Now()
	const limit = 3
	batch := limit + 16 // ListOrders' batch for this limit
	// Newest first: batch-2 orders of another client, then the shop's
	// S5 and S4 (the first batch's last two), then S3, S2, S1.
	n := 0
	add := func(no, client string) {
		n++
		if err := st.CreateOrder(ctx, storetest.NewOrder(no, client, "u1", base.Add(-time.Duration(n)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range batch - 2 {
		add(fmt.Sprintf("O%02d", i), "other")
	}
	for _, no := range []string{"S5", "S4", "S3", "S2", "S1"} {
		add(no, "shop")
	}
	a := &arrivals{st: st, err: make(chan error, 1), make: func(ctx context.Context) error {
		for i := range 2 {
			if err := st.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("N%d", i), "other", "u2", base.Add(time.Duration(i+1)*time.Second))); err != nil {
				return err
			}
		}
		return nil
	}}
	st.Client().AddHook(a)
	page, err := st.ListOrders(ctx, store.OrderFilter{Client: "shop", Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	if !a.fired.Load() {
		t.Fatal("no order arrived during the list")
	}
	if err := <-a.err; err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range page {
		got = append(got, o.OrderNo)
	}
	if want := []string{"S5", "S4", "S3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed %v; want %v", got, want)
	}
}

// TestListOrdersPastABatchOfOneMicrosecond: a list reads on past more
// entries of one microsecond than a batch holds (the index's scores are
// microseconds), from the top and from a cursor within them.
func TestListOrdersPastABatchOfOneMicrosecond(t *testing.T) {
	requireSharedRedis(t)
	ctx := context.Background()
	clock := storetest.NewClock()
	st := openOn(t, clock, Options{Addrs: []string{sharedAddr}})
	at := clock.Now()
	const limit = 3 // a batch of 19
	for i := range 45 {
		if err := st.CreateOrder(ctx, storetest.NewOrder(fmt.Sprintf("A%02d", i), "other", "u1", at)); err != nil {
			t.Fatal(err)
		}
	}
	for _, no := range []string{"00", "01", "02", "03"} { // listed after every A (by number, descending)
		if err := st.CreateOrder(ctx, storetest.NewOrder(no, "shop", "u1", at)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    store.OrderFilter
		want []string
	}{
		{store.OrderFilter{Client: "shop", Limit: limit}, []string{"03", "02", "01"}},
		{store.OrderFilter{Client: "shop", Limit: limit, Before: at, BeforeOrderNo: "03"}, []string{"02", "01", "00"}},
		{store.OrderFilter{Client: "shop", Limit: limit, Before: at, BeforeOrderNo: "A30"}, []string{"03", "02", "01"}},
	} {
		page, err := st.ListOrders(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range page {
			got = append(got, o.OrderNo)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%+v: listed %v; want %v", tc.f, got, tc.want)
		}
	}
}
