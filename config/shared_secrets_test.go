package config

import (
	"strings"
	"testing"
)

// TestSecretsOfOnePartyNotAnother: each secret is handed to one party,
// and one ${VAR} used for two of them (the slip admin.token and
// webhooks.secret are already refused for beside a client key) hands the
// one party the other's power, silently:
//   - webhooks.secret, which the merchant's endpoint holds, as admin.token:
//     that endpoint approves orders and settles reviews, and whoever holds
//     the admin token signs order.paid, on which the merchant delivers;
//   - webhooks.secret as a provider's key (its api_key, a credential
//     header's value, bare after its scheme, or a key in its base_url):
//     the provider receives it with every request and can sign order.paid
//     for an order nobody paid;
//   - admin.token as a provider's key: the provider can approve orders;
//   - a client's key as a provider's key (an operator who let the bots
//     keep the OpenAI key they had): the provider, and whoever else holds
//     that key, calls paygate as the bot, for any user it vouches for,
//     and reads and refunds their orders.
//
// Each is refused at the line of the secret that should be the party's own,
// without printing either value; secrets of their own load.
func TestSecretsOfOnePartyNotAnother(t *testing.T) {
	const shared = "sk-shared-0123456789abcdef"
	provider := func(kv string) string {
		return "providers:\n  - name: p\n    base_url: https://p.example/v1\n  - name: gw\n    base_url: https://gw.example/v1\n    " + kv + "\n" +
			"models:\n  - {name: m, targets: [{provider: p, model: x}]}\n"
	}
	const hooks = "webhooks:\n  url: https://m.example/hook\n  secret: "
	tests := []struct {
		name, src string
		want      string // the error's first line; "" when it loads
	}{
		{"the webhook secret is the admin token",
			"admin:\n  token: " + shared + "\n" + hooks + shared + "\n",
			"c.yaml:5: webhooks.secret: the same as admin.token: the merchant's endpoint, which holds the webhook secret, could approve orders and settle reviews, and whoever holds the admin token could sign order.paid; give each a secret of its own"},
		{"the webhook secret is a provider's api_key",
			provider("api_key: "+shared) + hooks + shared + "\n",
			"c.yaml:11: webhooks.secret: the same as providers[1].api_key: provider \"gw\", which receives it with every request, could sign order.paid for an order nobody paid; give the webhooks a secret of its own"},
		{"the webhook secret is a provider's credential header",
			provider("headers: {cf-aig-authorization: \"Bearer "+shared+"\"}") + hooks + shared + "\n",
			"c.yaml:11: webhooks.secret: the same as providers[1].headers.cf-aig-authorization: provider \"gw\", which receives it with every request, could sign order.paid for an order nobody paid; give the webhooks a secret of its own"},
		{"the webhook secret is the key in a provider's base_url",
			"providers:\n  - name: p\n    base_url: https://p.example/v1\n  - name: gw\n    base_url: \"https://gw.example/v1?key=" + shared + "\"\n" +
				"models:\n  - {name: m, targets: [{provider: p, model: x}]}\n" + hooks + shared + "\n",
			"c.yaml:10: webhooks.secret: the same as a credential in providers[1].base_url: provider \"gw\", which receives it with every request, could sign order.paid for an order nobody paid; give the webhooks a secret of its own"},
		{"the admin token is a provider's api_key",
			provider("api_key: "+shared) + "admin:\n  token: " + shared + "\n",
			"c.yaml:10: admin.token: the same as providers[1].api_key: provider \"gw\", which receives it with every request, could approve orders and settle reviews; give the admin API a token of its own"},
		{"a client's key is a provider's api_key",
			provider("api_key: "+shared) + "clients:\n  - {name: bot, key: " + shared + "}\n",
			"c.yaml:10: clients[0].key: the same as providers[1].api_key: provider \"gw\", which receives it with every request, could call paygate as this bot for any of its users, their orders and refunds; give the bot a key of its own"},
		{"secrets of their own",
			provider("api_key: "+shared) + "admin:\n  token: adm-0123456789abcdef\n" + hooks + "whsec-0123456789abcdef\n", ""},
		{"webhooks off",
			provider("api_key: "+shared) + "webhooks:\n  secret: " + shared + "\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loadsOrRefused(t, tt.src, tt.want, func(c *Config) string { return "webhooks.secret " + c.Webhooks.Secret })
			if _, err := Parse([]byte(tt.src), "c.yaml", envMap(nil)); err != nil && strings.Contains(err.Error(), shared) {
				t.Errorf("the error prints the secret: %v", err)
			}
		})
	}
}
