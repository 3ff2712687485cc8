package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestOwnSecretsNotAProviderCredential: a client key, the admin token and
// the webhook secret that are a provider's credential (one ${VAR} used for
// two) are refused, since the provider receives it with every request. The
// secrets paygate keeps to itself were not checked: privacy.hash_key (the
// provider, given the key, ties the hashes it sees to the OpenIDs it
// knows), the APIv3 key (which opens every WeChat Pay notification) and the
// Redis password (the store of every order) went upstream with every chat
// while check-config said ok. Each is refused at its line, without its
// value, where the config uses it.
func TestOwnSecretsNotAProviderCredential(t *testing.T) {
	f := wechatpayKeys(t)
	const shared = "s3cr3t-0123456789abcdef012345678" // 32 bytes: an APIv3 key's length
	provider := "providers:\n  - name: p\n    base_url: https://api.example.com/v1\n    api_key: " + shared + "\n" +
		"models: [{name: m, targets: [{provider: p, model: x}]}]\n" // lines 1-5
	wechatpay := func(key, previous string) string {
		s := "payments:\n  backend: wechatpay\n  wechatpay:\n" +
			"    apiv3_key: \"" + key + "\"\n" + // line 10, after the clients line
			"    notify_url: \"https://pay.example.com/wechatpay/notify\"\n" +
			"    mch_id: \"1900000001\"\n    app_id: wx1\n    mch_cert_serial: S\n" +
			"    mch_private_key_file: " + f["key.pem"] + "\n" +
			"    public_key_id: PUB_KEY_ID_1\n    public_key_file: " + f["pub.pem"] + "\n"
		if previous != "" {
			s += "    apiv3_previous_key: \"" + previous + "\"\n" // line 18
		}
		return s
	}
	const other = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, src string
		want      string // the error's start; "" when it loads
	}{
		{"the user hash key", "privacy: {hash_key: " + shared + "}\n", // line 6
			`c.yaml:6: privacy.hash_key: the same as providers[0].api_key: provider "p", which receives it with every request`},
		{"the user hash key, forward_user drop", "privacy: {forward_user: drop, hash_key: " + shared + "}\n", ""},
		{"the Redis password", "store: {driver: redis, redis: {password: " + shared + "}}\n",
			`c.yaml:6: store.redis.password: the same as providers[0].api_key: provider "p", which receives it with every request`},
		{"the Redis password, embedded store", "store: {driver: embedded, path: " + t.TempDir() + "/p.db, redis: {password: " + shared + "}}\n", ""},
		{"the APIv3 key", "clients: [{name: bot, key: k-0123456789abcdef}]\n" + wechatpay(shared, ""),
			`c.yaml:10: payments.wechatpay.apiv3_key: the same as providers[0].api_key: provider "p", which receives it with every request`},
		{"the outgoing APIv3 key", "clients: [{name: bot, key: k-0123456789abcdef}]\n" + wechatpay(other, shared),
			`c.yaml:18: payments.wechatpay.apiv3_previous_key: the same as providers[0].api_key: provider "p", which receives it with every request`},
		{"secrets of their own", "clients: [{name: bot, key: k-0123456789abcdef}]\n" + wechatpay(other, "") + "privacy: {hash_key: h-0123456789abcdef}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := provider + tc.src
			loadsOrRefused(t, src, tc.want, func(c *Config) string { return fmt.Sprintf("warnings %q", c.Warnings) })
			if _, err := Parse([]byte(src), "c.yaml", envMap(nil)); err != nil && strings.Contains(err.Error(), shared) {
				t.Errorf("the error prints the secret: %v", err)
			}
		})
	}
}
