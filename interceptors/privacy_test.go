package interceptors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
