package main

import (
	"testing"
)

func TestSymbolPackage(t *testing.T) {
	tests := []struct {
		name string
		line perfLine
		want string
	}{
		{name: "kernel", line: perfLine{kernel: true, sym: "tcp_sendmsg"}, want: "kernel"},
		{name: "runtime", line: perfLine{sym: "runtime.mallocgc"}, want: "runtime"},
		{name: "method", line: perfLine{sym: "net/http.(*conn).serve"}, want: "net/http"},
		{name: "closure", line: perfLine{sym: "net/http.(*Server).Serve.gowrap3"}, want: "net/http"},
		{name: "module path", line: perfLine{sym: "github.com/paygate/paygate/proxy.(*Server).chat"}, want: "github.com/paygate/paygate/proxy"},
		{name: "dotted module host", line: perfLine{sym: "github.com/tidwall/gjson.Get"}, want: "github.com/tidwall/gjson"},
		{name: "type parameter with a path", line: perfLine{sym: "slices.SortFunc[go.shape.*net/http.Request]"}, want: "slices"},
		{name: "assembly", line: perfLine{sym: "aeshashbody"}, want: "runtime assembly and vDSO"},
		{name: "vdso", line: perfLine{sym: "__vdso_clock_gettime"}, want: "runtime assembly and vDSO"},
		{name: "unresolved address", line: perfLine{sym: "0x0000000000470d1e"}, want: "runtime assembly and vDSO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := symbolPackage(tt.line); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestGroupByPackage(t *testing.T) {
	report := `# Overhead  Symbol
#
    11.13%  [k] finish_task_switch.isra.0
     3.46%  [.] runtime.unlock2
     3.44%  [k] _raw_spin_unlock_irqrestore
     3.01%  [.] runtime.lock2
     0.81%  [.] net/textproto.CanonicalMIMEHeaderKey
     0.50%  [.] net/http.(*conn).serve
     0.30%  [.] net/http.(*Transport).roundTrip
`
	got := groupByPackage(parsePerfLines(report))
	want := []pkgShare{{"kernel", 14.57}, {"runtime", 6.47}, {"net/textproto", 0.81}, {"net/http", 0.80}}
	if len(got) != len(want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].pct < want[i].pct-1e-9 || got[i].pct > want[i].pct+1e-9 {
			t.Errorf("group %d: got %v; want %v", i, got[i], want[i])
		}
	}
}
