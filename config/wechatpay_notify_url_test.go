package config

import (
	"strings"
	"testing"
)

// TestWeChatPayNotifyURLQuery: WeChat Pay takes a notify_url without
// parameters only (the simulator refuses one too, PARAM_ERROR "notify_url
// 格式错误"), and the URL goes into every prepay and refund: with a query,
// every purchase was refused and closed at run time. Config refuses it at
// its line, without printing the value (a query may carry a token).
func TestWeChatPayNotifyURLQuery(t *testing.T) {
	tests := []struct {
		url  string
		want string // the error after "c.yaml:3: payments.wechatpay.notify_url: "; "" when it loads
	}{
		{"https://pay.example.com/wechatpay/notify", ""},
		{"https://pay.example.com/wechatpay/notify?shop=hunter2", "WeChat Pay takes no parameters in it: no query (value not shown)"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			src := "payments:\n  wechatpay:\n    notify_url: \"" + tc.url + "\"\n"
			_, err := Parse([]byte(src), "c.yaml", envMap(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want it to load", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("accepted; WeChat Pay refuses every prepay naming it (%s)", tc.want)
			case err.Error() != "c.yaml:3: payments.wechatpay.notify_url: "+tc.want:
				t.Errorf("got %q; want %q", err, "c.yaml:3: payments.wechatpay.notify_url: "+tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error prints the query: %v", err)
			}
		})
	}
}

// TestWeChatPayNotifyURLPath: WeChat Pay posts each notification to
// notify_url exactly as given, and paygate serves them at /wechatpay/notify
// only. A notify_url naming the host alone (the base URL, as an OpenAI
// base URL is given) or another path was accepted without a word, and
// every notification was answered 404 "unknown endpoint": payments were
// learnt only by querying, late, and the merchant's order.paid with them.
// Config warns at its line (a proxy in front may rewrite the path, so it
// loads), without printing the path (it may carry a token).
func TestWeChatPayNotifyURLPath(t *testing.T) {
	tests := []struct {
		url  string
		warn bool
	}{
		{"https://pay.example.com/wechatpay/notify", false},
		{"https://pay.example.com/paygate/wechatpay/notify", false}, // a prefix the ingress strips
		{"https://pay.example.com", true},
		{"https://pay.example.com/", true},
		{"https://pay.example.com/hunter2/notify", true},
		{"https://pay.example.com/wechatpay/notify/", true},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			src := "payments:\n  wechatpay:\n    notify_url: \"" + tc.url + "\"\n"
			cfg, err := Parse([]byte(src), "c.yaml", envMap(nil))
			if err != nil {
				t.Fatalf("got %v; want it to load", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "payments.wechatpay.notify_url") {
					got = append(got, w)
				}
			}
			switch {
			case !tc.warn && len(got) > 0:
				t.Errorf("warnings %q; want none", got)
			case tc.warn && (len(got) != 1 || !strings.HasPrefix(got[0], "c.yaml:3: payments.wechatpay.notify_url: ") || !strings.Contains(got[0], "/wechatpay/notify")):
				t.Errorf("warnings %q; want one at c.yaml:3 naming /wechatpay/notify", got)
			}
			for _, w := range got {
				if strings.Contains(w, "hunter2") {
					t.Errorf("the warning prints the path: %s", w)
				}
			}
		})
	}
}
