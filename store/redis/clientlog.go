package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis logs on its own (a pool that cannot dial, a cluster node it
// drops) through a package-wide logger that by default prints plain lines
// to stderr: around the redacting JSON handler every other line of paygate
// goes through, without a request id, and mixed into a JSON log. The
// package's logger is replaced once, at init, by one that hands each line
// to the logger of the store opened last with one (Options.Logger), and
// drops it before any is. An atomic pointer: go-redis reads its logger from
// its own goroutines, and SetLogger may not be called once clients run.
var clientLog atomic.Pointer[slog.Logger]

func init() { goredis.SetLogger(clientLogger{}) }

type clientLogger struct{}

func (clientLogger) Printf(ctx context.Context, format string, v ...any) {
	if l := clientLog.Load(); l != nil {
		l.WarnContext(ctx, "redis client", "component", "redis", "detail", fmt.Sprintf(format, v...))
	}
}
