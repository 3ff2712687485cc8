package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ErrReadOnly is the error of a write on a Store opened with
// Options.ReadOnly: the command is refused before it is sent.
var ErrReadOnly = errors.New("the store is open read-only")

// readCommands are the commands a read-only Store sends: the reads of the
// store's read paths, a connection's set-up (HELLO, AUTH, SELECT, a
// cluster replica's READONLY, CLIENT), the start-up
// checks' INFO and CONFIG GET, a cluster's topology reads and SCRIPT LOAD,
// and the ASKING go-redis sends before a command it follows to a slot being
// moved (a resharding): it lets that connection's next command reach the
// importing primary, and changes no key.
// A connection's CLIENT commands (go-redis's set-up: names, notifications,
// tracking) change that connection, no key, and pass whole.
// Everything else is refused (readOnlyRefusal): an allow-list, so that a
// write a later version adds to a read path is refused, not made.
var readCommands = map[string]bool{
	"get": true, "mget": true, "strlen": true, "exists": true, "type": true, "ttl": true, "pttl": true,
	"hget": true, "hmget": true, "hgetall": true, "hexists": true, "hlen": true, "hkeys": true, "hvals": true, "hscan": true,
	"smembers": true, "sismember": true, "scard": true, "sscan": true,
	"zrange": true, "zrangebyscore": true, "zrevrange": true, "zrevrangebyscore": true, "zscore": true, "zcard": true, "zcount": true, "zscan": true,
	"lindex": true, "lrange": true, "llen": true,
	"scan": true, "dbsize": true, "time": true,
	"ping": true, "echo": true, "hello": true, "auth": true, "select": true, "readonly": true, "quit": true, "asking": true,
	"client": true, // the connection's own state (go-redis sets names, notifications, tracking)
	"info":   true, "role": true, "command": true,
	"evalsha_ro": true, "eval_ro": true,
}

// readSubcommands are the commands of which only some subcommands read.
var readSubcommands = map[string]map[string]bool{
	"config":  {"get": true},
	"cluster": {"slots": true, "shards": true, "nodes": true, "info": true, "myid": true},
	"script":  {"load": true, "exists": true},
}

// readScripts are the sources of the scripts that only read (their
// redis.call commands are all in readCommands: TestReadScriptsOnlyRead):
// the outbox head read, a user's state load, the server clock, the audit
// stray search and a list's check of the client indexes. A read-only
// Store runs these and no other.
var readScripts = []string{luaReadTag, luaLoadUser, luaIdxTime, luaStrayAudit, luaClientIndexed}

// readOnlyRefusal is the error a read-only Store gives cmd before sending
// it, nil for a read.
func (s *Store) readOnlyRefusal(cmd goredis.Cmder) error {
	args := cmd.Args()
	name := strings.ToLower(cmd.Name())
	if readCommands[name] {
		return nil
	}
	if sub, ok := readSubcommands[name]; ok && len(args) > 1 {
		if a, ok := args[1].(string); ok && sub[strings.ToLower(a)] {
			return nil
		}
	}
	if name == "evalsha" || name == "eval" {
		sha := ""
		if len(args) > 1 {
			sha, _ = args[1].(string)
		}
		if name == "eval" {
			h := sha1.Sum([]byte(sha))
			sha = hex.EncodeToString(h[:])
		}
		if s.readShas[sha] {
			return nil
		}
		return fmt.Errorf("%w: refused a script that writes (%s, script %.12s)", ErrReadOnly, strings.ToUpper(name), sha)
	}
	return fmt.Errorf("%w: refused %s", ErrReadOnly, strings.ToUpper(name))
}

// HoldsDeployment reports whether a paygate deployment ever used this
// Store's key prefix (and database): whether its owner record or its audit
// chain (head or records) is there. The owner record (Options.Owner) is
// written by every `paygate serve` when it first reaches Redis, whatever it
// is configured for, and never expires; the tools (`paygate audit`, tests)
// write none, so a mistyped prefix that a tool once opened does not pass
// for a deployment's. A deployment of an earlier version, which wrote no
// owner record, is found by its chain once it made its first money action;
// before that its chain is empty anyway. The epoch marker is no such mark:
// every Store that reaches Redis sets it, and `paygate audit` of earlier
// versions set it under whatever prefix it was given. One EXISTS per key
// (they are on different slots in a cluster).
func (s *Store) HoldsDeployment(ctx context.Context) (bool, error) {
	for _, k := range []string{s.k.one("meta", "owner"), s.k.audit("head"), s.k.audit("rec")} {
		n, err := s.c.Exists(ctx, k).Result()
		if err != nil {
			return false, mapErr("deployment check", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Owner is the deployment whose keys these are (Options.Owner), as the
// first `paygate serve` to reach Redis under this prefix recorded it; ""
// when none did.
func (s *Store) Owner(ctx context.Context) (string, error) {
	owner, err := s.c.Get(ctx, s.k.one("meta", "owner")).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", mapErr("owner", err)
	}
	return owner, nil
}
