package interceptors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"testing"
)

func TestPrivacyForward(t *testing.T) {
	key := []byte("forward-user-key")
	want := func(client, user string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(client + "\x00" + user))
		return "u_" + hex.EncodeToString(m.Sum(nil)[:16])
	}
	for _, tc := range []struct {
		mode, wantUser string
		wantSend       bool
	}{
		{"keep", "oUser", true},
		{"drop", "", false},
		{"hash", want("bot", "oUser"), true},
	} {
		for _, p := range []Privacy{NewPrivacy(tc.mode, key), {Mode: tc.mode, Key: key}} {
			got, send := p.Forward("bot", "oUser")
			if got != tc.wantUser || send != tc.wantSend {
				t.Fatalf("%s (pooled %v): Forward = %q, %v; want %q, %v", tc.mode, p.macs != nil, got, send, tc.wantUser, tc.wantSend)
			}
		}
	}
	// The pooled states are reset between uses, also under concurrency.
	p := NewPrivacy("hash", key)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				client, user := fmt.Sprint("bot", g%3), fmt.Sprint("o", i)
				if got, _ := p.Forward(client, user); got != want(client, user) {
					errs <- fmt.Sprintf("%s/%s: %s", client, user, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestPrivacyHashAllocations: the hash runs on every request of a known
// user; with a pooled state only its result is allocated. (The test holds
// one state itself: under the race detector sync.Pool drops items on
// purpose, which would make a count through the pool random.)
func TestPrivacyHashAllocations(t *testing.T) {
	p := NewPrivacy("hash", []byte("forward-user-key"))
	km := p.macs.Get().(*keyedMAC)
	want, _ := p.Forward("bot", "oUser")
	if got := km.userHash("bot", "oUser"); got != want {
		t.Fatalf("userHash = %q; Forward = %q", got, want)
	}
	if n := testing.AllocsPerRun(200, func() { km.userHash("bot", "oUser") }); n != 1 {
		t.Errorf("userHash allocates %v times; want 1 (its result)", n)
	}
}

// TestPrivacyForwardKeptHashes holds the kept hashes (userHashes) to the
// HMAC they stand for: asked again, from many goroutines, for more users
// than the table has slots (so slots change hands), for users of two
// clients, and for a user whose string is a view of a buffer the next
// request overwrites, as Identifier's values are views of a body. Each
// answer is the hash of the user as asked.
func TestPrivacyForwardKeptHashes(t *testing.T) {
	key := []byte("forward-user-key")
	want := func(client, user string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(client + "\x00" + user))
		return "u_" + hex.EncodeToString(m.Sum(nil)[:16])
	}
	p := NewPrivacy("hash", key)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				for i := 0; i < 3*userHashSlots; i++ {
					client, user := fmt.Sprint("bot", (g+i)%2), fmt.Sprint("o", i%(2*userHashSlots))
					if got, _ := p.Forward(client, user); got != want(client, user) {
						errs <- fmt.Sprintf("%s/%s: %s", client, user, got)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// Two users of one slot, the first read from a buffer that then holds
	// the second: the kept hash must not be the first's.
	slotOf := func(u string) uint64 { return maphash.String(p.hashes.seed, u) % userHashSlots }
	first, second := "o00000", ""
	for i := 1; second == ""; i++ {
		if u := fmt.Sprintf("o%05d", i); slotOf(u) == slotOf(first) {
			second = u
		}
	}
	buf := []byte(first)
	if got, _ := p.Forward("bot", unsafeString(buf)); got != want("bot", first) {
		t.Fatalf("Forward(%s) = %q; want %q", first, got, want("bot", first))
	}
	copy(buf, second)
	if got, _ := p.Forward("bot", second); got != want("bot", second) {
		t.Fatalf("Forward(%s), after %s was read from a buffer that now holds it, = %q; want %q (%s's is %q)",
			second, first, got, want("bot", second), first, want("bot", first))
	}
	// A kept hash is answered without allocating.
	if n := testing.AllocsPerRun(100, func() { p.Forward("bot", second) }); n != 0 {
		t.Errorf("Forward of a kept user allocates %v times; want 0", n)
	}
}

// TestPrivacyKeptHashesBounded holds the memory the kept hashes
// (userHashes) take to a bound whatever the values hashed: Identifier
// hashes a body's safety_identifier and prompt_cache_key, which no
// length limit holds (an end user's id is at most 256 bytes, a body up to
// max_body_bytes), so kept whole, 1,024 long values would stay in memory
// until other users took their slots. A long value is still hashed, and
// hashed right.
func TestPrivacyKeptHashesBounded(t *testing.T) {
	key := []byte("forward-user-key")
	want := func(client, user string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(client + "\x00" + user))
		return "u_" + hex.EncodeToString(m.Sum(nil)[:16])
	}
	p := NewPrivacy("hash", key)
	long := strings.Repeat("k", 16<<10)
	for i := 0; i < 2*userHashSlots; i++ {
		v := fmt.Sprintf("%d%s", i, long)
		if got, _ := p.Identifier("bot", v); got != want("bot", v) {
			t.Fatalf("Identifier of a %d-byte value = %q; want %q", len(v), got, want("bot", v))
		}
	}
	kept := 0
	for i := range p.hashes.slots {
		if e := p.hashes.slots[i].Load(); e != nil {
			kept += len(e.client) + len(e.user) + len(e.hash)
		}
	}
	if limit := userHashSlots * (keptIDMax + 34); kept > limit {
		t.Errorf("the kept hashes hold %d bytes of strings after %d values of %d bytes; want at most %d",
			kept, 2*userHashSlots, len(long), limit)
	}
}
