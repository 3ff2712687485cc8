package redis

import (
	"errors"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/store"
)

// replyErr is a server's error reply, as go-redis reports one.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

// TestRefusalInsideAScriptIsUnavailable: Redis refuses a write command a
// script runs with the same "not now" as the command alone (a replica
// after a failover, a full Redis, one short of its replicas, one unable to
// persist), but up to 6.2 it wraps the refusal in the script's error,
// "ERR Error running script (call to f_…): @user_script:…: -READONLY …",
// which was read as the script's own plain error, "not applied": a money
// write sent to a master demoted by a sentinel failover, whose re-send
// follows a try that may have applied, is unavailable, as Redis 7's form
// (the refusal first, the script after) and the bare refusal of EVALSHA
// (LOADING, MASTERDOWN) are. A script's own errors stay plain.
func TestRefusalInsideAScriptIsUnavailable(t *testing.T) {
	const sha = "f_1028a5dba704e1d8a01fd96efeba25bb78f62df2"
	for _, tt := range []struct {
		name, msg   string
		unavailable bool
	}{
		{"6.2 READONLY", "ERR Error running script (call to " + sha + "): @user_script:4: @user_script: 4: -READONLY You can't write against a read only replica.", true},
		{"6.0 READONLY", "ERR Error running script (call to " + sha + "): @user_script:2: -READONLY You can't write against a read only replica.", true},
		{"6.2 OOM", "ERR Error running script (call to " + sha + "): @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'.", true},
		{"6.2 NOREPLICAS", "ERR Error running script (call to " + sha + "): @user_script:3: @user_script: 3: -NOREPLICAS Not enough good replicas to write.", true},
		{"6.2 MISCONF", "ERR Error running script (call to " + sha + "): @user_script:1: @user_script: 1: -MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", true},
		{"6.2 MASTERDOWN", "ERR Error running script (call to " + sha + "): @user_script:1: @user_script: 1: -MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", true},
		{"7 READONLY", "READONLY You can't write against a read only replica. script: 41d08d75b8625b0cb0d540ac154ab2486b360b6a, on @user_script:1.", true},
		{"7 OOM", "OOM command not allowed when used memory > 'maxmemory'. script: 41d08d75b8625b0cb0d540ac154ab2486b360b6a, on @user_script:1.", true},
		{"7 NOREPLICAS", "NOREPLICAS Not enough good replicas to write. script: 4866e50f1c55280d7667fcfe10891bcb15fde56b, on @user_script:1.", true},
		{"7 MASTERDOWN", "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'. script: 4866e50f1c55280d7667fcfe10891bcb15fde56b, on @user_script:1.", true},
		{"EVALSHA LOADING", "LOADING Redis is loading the dataset in memory", true},
		{"EVALSHA MASTERDOWN", "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", true},
		{"6.2 a command's own error", "ERR Error running script (call to " + sha + "): @user_script:1: @user_script: 1: WRONGTYPE Operation against a key holding the wrong kind of value", false},
		{"6.2 the script's Lua error", "ERR Error running script (call to " + sha + "): @user_script:1: user_script:1: Script attempted to access nonexistent global variable 'READONLY'", false},
		{"7 a command's own error", "WRONGTYPE Operation against a key holding the wrong kind of value script: 41d08d75b8625b0cb0d540ac154ab2486b360b6a, on @user_script:1.", false},
		{"the script's error reply", "STALEINTENT the write's intent is past its deadline", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := mapErr("incr counter", replyErr(tt.msg)); errors.Is(err, store.ErrUnavailable) != tt.unavailable {
				t.Errorf("a write's script answered %q: %v; want unavailable %v", tt.msg, err, tt.unavailable)
			}
			if err := writeErr("claim", replyErr(tt.msg)); errors.Is(err, store.ErrUnavailable) != tt.unavailable {
				t.Errorf("a money write's script answered %q: %v; want unavailable %v", tt.msg, err, tt.unavailable)
			}
		})
	}
}

// TestScriptNilReplyIsAMiss: a script that answers nothing (Lua's nil or
// false) reaches go-redis as redis.Nil, the plain miss mapErr passes
// through. Since run reads every script's error as a money write's
// (writeErr), a nil reply was taken for a refusal of a re-send, "may have
// applied": a read or a lookup that found nothing was read as a store
// that did not answer.
func TestScriptNilReplyIsAMiss(t *testing.T) {
	err := writeErr("resync read", goredis.Nil)
	if !errors.Is(err, goredis.Nil) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a script answered nil: %v; want redis.Nil, not unavailable", err)
	}
}
