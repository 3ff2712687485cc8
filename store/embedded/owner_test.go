package embedded_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/store/embedded"
)

// TestOpenRefusesAnotherMerchantsFile: an operator changes
// payments.wechatpay.mch_id (or the backend) and restarts on the same
// store file. The file holds the first merchant's orders, paid or pending
// there; the new merchant's reconciler would query its own WeChat Pay for
// them, expire those it does not find and send their refunds where they
// were never paid. The first Open with an owner records it; an Open with
// another is refused with ErrOtherOwner naming both, and the file is
// free again (its lock released) for the owner's next Open. An Open
// without an owner (a tool) and a read-only Open are neither recorded
// nor refused. The Redis store refuses another owner under its prefix
// the same way; the embedded file took any merchant's.
func TestOpenRefusesAnotherMerchantsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paygate.db")
	open := func(o embedded.Options) error {
		t.Helper()
		d, err := embedded.Open(path, o)
		if err == nil {
			err = d.Close()
		}
		return err
	}
	if err := open(embedded.Options{}); err != nil {
		t.Fatalf("open without an owner: %v", err)
	}
	steps := []struct {
		owner    string
		readOnly bool
		refused  bool
	}{
		{owner: "wechatpay:1900000109"},
		{owner: "wechatpay:1900000109"},
		{owner: "wechatpay:1900000222", refused: true},
		{owner: "simulator:1900000109", refused: true},
		{owner: ""},
		{owner: "wechatpay:1900000222", readOnly: true},
		{owner: "wechatpay:1900000109"},
	}
	for i, s := range steps {
		err := open(embedded.Options{Owner: s.owner, ReadOnly: s.readOnly})
		if !s.refused {
			if err != nil {
				t.Errorf("step %d, owner %q: %v; want it opened", i, s.owner, err)
			}
			continue
		}
		if !errors.Is(err, embedded.ErrOtherOwner) {
			t.Errorf("step %d, owner %q: %v; want ErrOtherOwner", i, s.owner, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "wechatpay:1900000109") || !strings.Contains(msg, s.owner) {
			t.Errorf("step %d: %q; want both owners named", i, msg)
		}
	}
}
