package logging

import (
	"strings"
	"testing"
)

// BenchmarkRedactorString is the cost of masking one upstream error text
// with a typical set of secrets, some of which encodings change (a base64
// APIv3 key, a URL token with "/" and "+").
func BenchmarkRedactorString(b *testing.B) {
	r := NewRedactor([]string{"sk-live-provider-0123456789abcdef", "sk-client-key-0123456789",
		"Zk9+a2V5/with/slash+plus==", "adm-token-0123456789abcdef", "apiv3/key+0123456789abcdef=="})
	text := `401 {"error":{"message":"Incorrect API key provided. You can find your API key at https://platform.example.com/account/api-keys.","type":"invalid_request_error"}} ` + strings.Repeat("x", 400)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.String(text)
	}
}

// BenchmarkRedactorHas is the check a forwarded stream's line over
// maxMaskedLine passes through at each read (proxy's sseErrorMask.values):
// 4 KiB of answer text without a secret, as most are.
func BenchmarkRedactorHas(b *testing.B) {
	r := NewRedactorMin([]string{"sk-live-provider-0123456789abcdef", "sk-client-key-0123456789",
		"Zk9+a2V5/with/slash+plus==", "adm-token-0123456789abcdef", "apiv3/key+0123456789abcdef=="}, ClientMinSecret)
	text := []byte(`data: {"type":"response.output_text.delta","delta":"` + strings.Repeat("some ordinary answer text, sk- and key words; ", 90) + `"}`)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if r.Has(text) {
			b.Fatal("no secret")
		}
	}
}
