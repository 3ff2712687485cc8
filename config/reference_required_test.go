package config

import (
	"errors"
	"strings"
	"testing"
)

// TestReferenceSaysWhatWeChatPayRequires: every key check-config requires
// with backend wechatpay says so in the reference, so that a merchant who
// fills in the keys the README names as required does not find more
// missing only when check-config runs.
func TestReferenceSaysWhatWeChatPayRequires(t *testing.T) {
	_, err := Parse([]byte("payments:\n  backend: wechatpay\n"), "t.yaml", func(string) (string, bool) { return "", false })
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse: got %v; want the keys backend wechatpay requires", err)
	}
	rows, err := referenceRows(embeddedSource())
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]string{}
	for _, r := range rows {
		doc[r.Key] = r.Doc
	}
	for _, e := range es {
		if !strings.Contains(e.Msg, "with backend wechatpay") && !strings.Contains(e.Msg, "to verify WeChat Pay's signatures") {
			continue
		}
		d, ok := doc[e.Path]
		if !ok {
			t.Errorf("%s: no reference row", e.Path)
			continue
		}
		if !strings.Contains(d, "Required with backend wechatpay") {
			t.Errorf("%s: check-config says %q; its reference row does not say it is required with backend wechatpay: %q", e.Path, e.Msg, d)
		}
	}
}
