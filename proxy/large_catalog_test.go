package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/config"
)

// openAIToolLimits answers as OpenAI's chat completions do a request whose
// tool definitions pass its limits: a function description longer than
// 1024 characters is a 400 string_above_max_length (the body is OpenAI's,
// as getsentry/sentry-mcp#106 and OpenHands#4838 quote it). Any other
// request gets a text answer. It records the tool definitions it was sent.
type openAIToolLimits struct {
	mu    sync.Mutex
	tools [][]byte
}

func (o *openAIToolLimits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	tools := gjson.GetBytes(body, "tools")
	o.mu.Lock()
	o.tools = append(o.tools, []byte(tools.Raw))
	o.mu.Unlock()
	for i, tl := range tools.Array() {
		d := tl.Get("function.description").Str
		if n := utf8.RuneCountInString(d); n > 1024 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":{"message":"Invalid 'tools[%d].function.description': string too long. Expected a string with maximum length 1024, but got a string with length %d instead.","type":"invalid_request_error","param":"tools[%d].function.description","code":"string_above_max_length"}}`, i, n, i)
			return
		}
	}
	textRound(false, "Which product would you like?")(w, r)
}

// largeCatalog is n items named and priced as a shop's are.
func largeCatalog(n int) []config.CatalogItem {
	items := make([]config.CatalogItem, n)
	for i := range items {
		price, _ := config.ParseDecimal(fmt.Sprintf("%d.99", 10+i%90))
		items[i] = config.CatalogItem{SKU: fmt.Sprintf("tee-%05d", i), Name: fmt.Sprintf("Cotton T-shirt no. %d, size M", i), Price: price, MaxQuantity: 5}
	}
	return items
}

// TestLargeCatalogOfferedWithinProviderLimits: a shop of ten items or more
// is served on every signed-in turn by OpenAI, for every client: the
// catalog was listed in create_order's description, which OpenAI refuses
// past 1024 characters with a 400 the bot got on every turn of a signed-in
// user (a shop down), while the same turn signed out was served. Each
// client's definitions are the same bytes on every turn (prompt caches),
// list its own SKUs, and the sku enum is left out past 100 SKUs.
func TestLargeCatalogOfferedWithinProviderLimits(t *testing.T) {
	for _, n := range []int{10, 200, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fake := &openAIToolLimits{}
			up := httptest.NewServer(fake)
			t.Cleanup(up.Close)
			url := toolsProxy(t, up.URL, &recordingTools{}, func(c *config.Config) {
				c.Payments.Catalog = largeCatalog(n)
				c.Clients = append(c.Clients, config.Client{Name: "kiosk", Key: "sk-paygate-kiosk-key", AllowedSKUs: []string{"tee-00001", "tee-00003", "tee-00005", "tee-00007", "tee-00009"}})
			})
			for range 2 {
				for _, key := range []string{testClientKey, "sk-paygate-kiosk-key"} {
					h := map[string]string{"X-WeChat-OpenID": "o-user-1", "Authorization": "Bearer " + key}
					resp := post(t, url, "/v1/chat/completions", chatBody(false, ""), h)
					if body := readAll(t, resp.Body); resp.StatusCode != 200 {
						t.Errorf("%d items, client %s: %d %s; want 200", n, key, resp.StatusCode, body)
					}
				}
			}
			if len(fake.tools) != 4 {
				t.Fatalf("%d upstream requests; want 4", len(fake.tools))
			}
			for i := range 2 {
				if string(fake.tools[i]) != string(fake.tools[i+2]) {
					t.Errorf("client %d: the tool definitions differ between turns", i)
				}
			}
			sku := func(i int) gjson.Result {
				return gjson.GetBytes(fake.tools[i], `#(function.name=="create_order").function.parameters.properties.sku`)
			}
			if got, want := len(sku(0).Get("enum").Array()), map[int]int{10: 10, 200: 0, 5000: 0}[n]; got != want {
				t.Errorf("the sku enum of %d items has %d values; want %d", n, got, want)
			}
			if got := sku(1).Get("enum").Raw; got != `["tee-00001","tee-00003","tee-00005","tee-00007","tee-00009"]` {
				t.Errorf("the kiosk's sku enum is %s; want its five SKUs", got)
			}
			if d := sku(1).Get("description").Str; !strings.Contains(d, "tee-00009 = Cotton T-shirt no. 9, size M, 19.99 CNY, at most 5 per order") || strings.Contains(d, "tee-00002") {
				t.Errorf("the kiosk's catalog: %s; want its five SKUs", d)
			}
		})
	}
}
