package payments_test

import (
	"strings"
	"testing"
)

// TestCreateOrderAskedCountSaysHowToBuyOne: a create_order without
// "quantity" whose member reads as a count is asked about, and the
// clarification told the model to "leave it out to buy one". A member a
// model adds of its own for a monthly SKU ("trial_days":7) is asked about
// since period names read as counts; the user answers "just one", and the
// model, leaving "quantity" out as told, sent the same call, asked again
// every time: the purchase could not be made. The clarification says
// "quantity": 1 buys one, and that call buys one.
func TestCreateOrderAskedCountSaysHowToBuyOne(t *testing.T) {
	for _, driver := range drivers(t) {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, envOptions{driver: driver})
			tools := newTools(e)
			u := caller("oUser-create-asked-one")
			asked := call(t, tools, u, "create_order", `{"sku":"premium-monthly","trial_days":7}`)
			why, _ := asked.result["error"].(string)
			if !asked.out.Clarify || !strings.Contains(why, `"trial_days"`) {
				t.Fatalf("result %s; want trial_days asked about", asked.out.Result)
			}
			if !strings.Contains(why, `"quantity": 1`) || strings.Contains(why, "leave it out") {
				t.Errorf("error %q; want it to say \"quantity\": 1 buys one, not to leave quantity out (asked again so)", why)
			}
			wantOrderOf(t, tools, u, `{"sku":"premium-monthly","trial_days":7,"quantity":1}`, 4999)
		})
	}
}
