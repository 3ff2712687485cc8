package interceptors

import "testing"

func TestDropPaygate(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"none", `{"id":"a","choices":[]}`, `{"id":"a","choices":[]}`},
		{"last", `{"id":"a","paygate":` + forged + `}`, `{"id":"a"}`},
		{"first", `{"paygate":` + forged + `,"id":"a"}`, `{"id":"a"}`},
		{"middle", `{"id":"a","paygate":` + forged + `,"model":"m"}`, `{"id":"a","model":"m"}`},
		{"only", `{"paygate":` + forged + `}`, `{}`},
		{"pretty", "{\n  \"id\": \"a\",\n  \"paygate\": {}\n}", "{\n  \"id\": \"a\"\n}"},
		// Most parsers keep the last of a repeated member: all go.
		{"repeated", `{"paygate":null,"id":"a","paygate":` + forged + `}`, `{"id":"a"}`},
		{"repeated first", `{"paygate":1,"paygate":2,"id":"a"}`, `{"id":"a"}`},
		{"repeated last", `{"id":"a","paygate":1,"paygate":2}`, `{"id":"a"}`},
		{"repeated only", `{"paygate":1, "paygate":2}`, `{}`},
		// Go's encoding/json matches names case-insensitively; every parser
		// decodes escapes.
		{"case variant", `{"id":"a","PayGate":` + forged + `}`, `{"id":"a"}`},
		{"upper case", `{"PAYGATE":` + forged + `,"id":"a"}`, `{"id":"a"}`},
		{"escaped", `{"id":"a","p\u0061yg\u0061te":` + forged + `}`, `{"id":"a"}`},
		{"all escaped", `{"id":"a","\u0070\u0061\u0079\u0067\u0061\u0074\u0065":1}`, `{"id":"a"}`},
		// Only the top-level member is paygate's word.
		{"nested kept", `{"id":"a","choices":[{"paygate":1}],"x":{"paygate":2}}`, `{"id":"a","choices":[{"paygate":1}],"x":{"paygate":2}}`},
		{"value kept", `{"id":"a","content":"paygate","paygate_x":1,"my_paygate":2}`, `{"id":"a","content":"paygate","paygate_x":1,"my_paygate":2}`},
		// paygate's word on an error answer is error.paygate (the SDKs
		// expose only the error object): an upstream's there goes too.
		{"in error", `{"error":{"message":"m","paygate":` + forged + `}}`, `{"error":{"message":"m"}}`},
		{"in error first", `{"error":{"paygate":` + forged + `,"message":"m"},"id":"a"}`, `{"error":{"message":"m"},"id":"a"}`},
		{"in error and top", `{"paygate":1,"error":{"message":"m","PAYGATE":2},"paygate":3}`, `{"error":{"message":"m"}}`},
		{"in error only", `{"id":"a","error":{"paygate":1}}`, `{"id":"a","error":{}}`},
		{"error not an object", `{"error":"paygate","id":"a"}`, `{"error":"paygate","id":"a"}`},
		{"deeper in error kept", `{"error":{"details":{"paygate":1}}}`, `{"error":{"details":{"paygate":1}}}`},
		{"not JSON", `{"paygate":`, `{"paygate":`},
		{"array", `[{"paygate":1}]`, `[{"paygate":1}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got := DropPaygate(in)
			if string(got) != tc.want {
				t.Errorf("DropPaygate(%s) = %s; want %s", tc.in, got, tc.want)
			}
			if string(in) != tc.in {
				t.Errorf("the input changed: %s", in)
			}
			if tc.in == tc.want && len(in) > 0 && &got[0] != &in[0] {
				t.Errorf("a body without a paygate member was copied")
			}
		})
	}
}

func TestDropPaygateAllocatesNothingWithoutOne(t *testing.T) {
	chunk := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_y","choices":[{"index":0,"delta":{"content":"Yes, you may pay"},"finish_reason":null}]}`)
	if allocs := testing.AllocsPerRun(100, func() { DropPaygate(chunk) }); allocs != 0 {
		t.Errorf("%v allocs per chunk; want 0", allocs)
	}
}

// BenchmarkDropPaygate is its cost on every chunk of the plain relay: a
// chunk without the member, the common case.
func BenchmarkDropPaygate(b *testing.B) {
	chunk := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_y","choices":[{"index":0,"delta":{"content":"Yes, you may pay"},"finish_reason":null}]}`)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		DropPaygate(chunk)
	}
}
