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
