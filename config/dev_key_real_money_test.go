package config

import (
	"fmt"
	"testing"
)

// TestDevKeyWithRealMoney: the built-in development key (the README
// publishes it) on a listener other machines reach was a warning whatever
// the backend, while a short key of one's own was refused there. With
// backend wechatpay anyone who reaches server.listen acts with it as the
// bot for any user it names: reads their orders, proposes a refund of a
// real payment and confirms it as the user (POST
// /v1/paygate/refunds/{id}/confirm). It is refused there, written or left
// to the default client; with the simulator (the container image's quick
// start) and on loopback it stays as it was.
func TestDevKeyWithRealMoney(t *testing.T) {
	f := wechatpayKeys(t)
	wechatpay := "payments:\n  backend: wechatpay\n  wechatpay:\n" + // backend at line 3, after the clients line 5
		"    notify_url: \"https://pay.example.com/wechatpay/notify\"\n" +
		"    mch_id: \"1900000001\"\n    app_id: wx1\n    mch_cert_serial: S\n" +
		"    apiv3_key: \"0123456789abcdef0123456789abcdef\"\n" +
		"    mch_private_key_file: " + f["key.pem"] + "\n" +
		"    public_key_id: PUB_KEY_ID_1\n    public_key_file: " + f["pub.pem"] + "\n"
	const written = "clients:\n  - {name: bot, key: sk-paygate-dev}\n" // key at line 3
	tests := []struct {
		name, listen, src string
		want              string // the error's start; "" when it loads
	}{
		{"written, reachable, wechatpay", "0.0.0.0:8080", written + wechatpay,
			"c.yaml:3: clients[0].key: the built-in development key sk-paygate-dev, which the README publishes, with payments.backend wechatpay, and server.listen 0.0.0.0:8080 takes connections from other machines"},
		{"the default client, reachable, wechatpay", ":8080", wechatpay,
			"c.yaml:3: clients: not set: the built-in development client \"default\" with the key sk-paygate-dev, which the README publishes, with payments.backend wechatpay, and server.listen :8080 takes connections from other machines"},
		{"written, loopback, wechatpay", "127.0.0.1:8080", written + wechatpay, ""},
		{"written, reachable, simulator (warned)", "0.0.0.0:8080", written, ""},
		{"a key of its own, reachable, wechatpay", "0.0.0.0:8080", "clients:\n  - {name: bot, key: k-0123456789abcdef}\n" + wechatpay, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "server: {listen: \"" + tc.listen + "\"}\n" + tc.src
			loadsOrRefused(t, src, tc.want, func(c *Config) string { return fmt.Sprintf("warnings %q", c.Warnings) })
		})
	}
}
