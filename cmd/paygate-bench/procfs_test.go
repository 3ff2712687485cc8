package main

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (nginx) S 1200 1234 1234 0 -1 4194624 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 100",
			want: procStat{ppid: 1200, cpu: 325 * 10 * time.Millisecond},
		},
		{
			name: "name with spaces and parentheses",
			in:   "42 (a) b (c) R 7 42 42 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0",
			want: procStat{ppid: 7, cpu: 7 * 10 * time.Millisecond},
		},
		{name: "truncated", in: "42 (x) R 7 42", wantErr: true},
		{name: "no name", in: "42 x R 7", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v; want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatusBytes(t *testing.T) {
	status := "Name:\tpaygate\nVmPeak:\t 1000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"
	tests := []struct {
		name    string
		key     string
		want    uint64
		wantErr bool
	}{
		{name: "peak", key: "VmHWM", want: 20480 * 1024},
		{name: "current", key: "VmRSS", want: 10240 * 1024},
		{name: "missing", key: "VmSwap", wantErr: true},
		{name: "prefix is not a key", key: "Vm", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusBytes([]byte(status), tt.key)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestProcfsOfThisProcess(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() {
		t.Errorf("got ppid %d; want %d", st.ppid, os.Getppid())
	}
	hwm, err := statusBytes(os.Getpid(), "VmHWM")
	if err != nil || hwm == 0 {
		t.Errorf("got VmHWM %d, %v; want > 0", hwm, err)
	}
}

func TestParseSystemBusy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "idle and iowait left out", in: "cpu  100 2 30 5000 40 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8\n", want: 138 * 10 * time.Millisecond},
		{name: "not the cpu line", in: "intr 1 2 3\n", wantErr: true},
		{name: "short", in: "cpu 1 2 3\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSystemBusy([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
