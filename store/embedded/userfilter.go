package embedded

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// userFilter answers whether a (client, user) might have an order, without
// a read transaction. LoadUserState runs on every turn of a known user, and
// most turns come from users who never ordered: for them the answer is "no"
// from memory, which spares the transaction (3–5% of a non-stream request
// in the load run).
//
// It is a Bloom filter of fixed size, so its memory does not grow with the
// users. A false "maybe" costs the read that would have happened anyway. A
// false "no" would hide a user's orders from the model, so a user is added
// inside CreateOrder's write transaction, before the order can be read, and
// never removed (the user index keeps every order): a reader that finds no
// bit set read before the order existed, as a transaction would have.
type userFilter struct {
	seed maphash.Seed
	bits []atomic.Uint64
}

const (
	// filterBits is 1 MiB of bits: about 2% false "maybe" with a million
	// users who ordered, 0.0005% (one in 200,000) with a hundred thousand.
	filterBits   = 1 << 23
	filterHashes = 4
)

func newUserFilter() *userFilter {
	return &userFilter{seed: maphash.MakeSeed(), bits: make([]atomic.Uint64, filterBits/64)}
}

// add records the user whose index prefix (userPrefix) is p.
func (f *userFilter) add(p []byte) {
	h := maphash.Bytes(f.seed, p)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := range uint32(filterHashes) {
		bit := (h1 + i*h2) & (filterBits - 1)
		f.bits[bit/64].Or(1 << (bit % 64))
	}
}

// mayHave reports whether the user with index prefix p may have an order.
func (f *userFilter) mayHave(p []byte) bool {
	h := maphash.Bytes(f.seed, p)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := range uint32(filterHashes) {
		bit := (h1 + i*h2) & (filterBits - 1)
		if f.bits[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// loadUserFilter fills a filter with the users of the user index. It
// returns nil, and LoadUserState then always reads, when a key does not
// parse: a filter that missed a user would hide that user's orders.
func loadUserFilter(db *bolt.DB) (*userFilter, error) {
	f := newUserFilter()
	ok := true
	err := db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bUserOrders).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n := userPrefixLen(k)
			if n < 0 {
				ok = false
				return nil
			}
			f.add(k[:n])
		}
		return nil
	})
	if err != nil || !ok {
		return nil, err
	}
	return f, nil
}

// userPrefixLen is the length of the userPrefix at the start of a user
// index key (two length-prefixed strings), or -1.
func userPrefixLen(k []byte) int {
	n := 0
	for range 2 {
		l, w := binary.Uvarint(k[n:])
		if w <= 0 || l > uint64(len(k)-n-w) {
			return -1
		}
		n += w + int(l)
	}
	return n
}
