package payments

import "context"

// Turn is the conversation turn that caused a money action: what the audit
// record must keep so an auditor can later see what the model saw and how it
// was asked (SPEC 7). The proxy puts it on the context it hands to payment
// tool execution (WithTurn); every transition committed under that context
// carries it in Transition.Turn, so the Options.Events hook can write it into
// the action's audit event atomically with the transition.
type Turn struct {
	Client string // client key name (never the key)
	User   string // the end user's OpenID
	// Messages is the request's "messages" array exactly as the bot sent it
	// (JSON). It is kept beside the audit chain, which covers only its hash.
	Messages []byte
	Provider string // the provider that served the round with the tool call
	Model    string // the upstream model name at that provider
	// Params are the request's sampling parameters (temperature, top_p,
	// max_tokens, seed, stop, penalties, …) as decoded from JSON.
	Params map[string]any
}

type turnKey struct{}

// WithTurn returns ctx carrying t, for the payment calls a turn makes.
func WithTurn(ctx context.Context, t *Turn) context.Context {
	return context.WithValue(ctx, turnKey{}, t)
}

// TurnFrom returns the turn carried by ctx, or nil (a notification, a sweep,
// an admin action).
func TurnFrom(ctx context.Context) *Turn {
	t, _ := ctx.Value(turnKey{}).(*Turn)
	return t
}
