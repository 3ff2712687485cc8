package accounting

import (
	"sort"
	"time"
)

// Stats is GET /admin/api/stats: this replica's LLM spend, paid orders and
// cost per completed transaction, in total, per hour (last 48 h: the
// current hour and the 47 before) and per model. Amounts are decimal strings in the providers' billing currency,
// exact: at least six places and up to twelve (a pico-unit, see
// Pico.String); a cost per transaction is rounded half-up at the twelfth.
type Stats struct {
	// Turns are the chat-completion requests routed to the providers,
	// answered or not (every provider failing or cooling down, the client
	// gone): plain and payment turns alike. A request refused before it is
	// routed (a 400, an unknown model) is no turn.
	Turns              int64        `json:"turns"`
	PaidOrders         int64        `json:"paid_orders"`
	LLMCost            string       `json:"llm_cost"`
	TransactionCost    string       `json:"transaction_llm_cost"`
	CostPerTransaction *string      `json:"cost_per_transaction"`
	Series             []HourStats  `json:"series"`
	ByModel            []ModelStats `json:"by_model"`
}

// HourStats is one hour of the series: the turns and LLM spend recorded in
// it, and the orders WeChat Pay says were paid in it (a notification or
// query that came later files its order back here), with the cost of their
// conversations.
type HourStats struct {
	Hour               string  `json:"hour"`
	Turns              int64   `json:"turns"`
	LLMCost            string  `json:"llm_cost"`
	PaidOrders         int64   `json:"paid_orders"`
	CostPerTransaction *string `json:"cost_per_transaction"`
}

// ModelStats is one provider and upstream model.
type ModelStats struct {
	Provider         string `json:"provider"`
	Model            string `json:"model"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	// CachedPromptTokens are the prompt tokens (among PromptTokens) the
	// provider served from its prompt cache, priced at cached_input.
	CachedPromptTokens int64  `json:"cached_prompt_tokens"`
	LLMCost            string `json:"llm_cost"`
}

func perTx(cost Pico, n int64) *string {
	if n == 0 {
		return nil
	}
	s := cost.per(n).String()
	return &s
}

// Stats returns the ledger's figures. The series leaves out hours older than
// 48 h even when no bucket has been made since (a quiet replica: buckets
// are otherwise dropped only as a new hour's is made), and hours after the
// current one, which a clock that stepped back left (keepHours).
func (l *Ledger) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keepHours(l.now().Unix() / 3600)
	s := Stats{
		Turns: l.totals.turns, PaidOrders: l.totals.paidOrders,
		LLMCost: l.totals.cost.String(), TransactionCost: l.totals.txCost.String(),
		CostPerTransaction: perTx(l.totals.txCost, l.totals.paidOrders),
		Series:             []HourStats{}, ByModel: []ModelStats{},
	}
	hours := make([]int64, 0, len(l.hours))
	for h := range l.hours {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	for _, h := range hours {
		b := l.hours[h]
		s.Series = append(s.Series, HourStats{
			Hour: time.Unix(h*3600, 0).UTC().Format(time.RFC3339), Turns: b.turns, LLMCost: b.cost.String(),
			PaidOrders: b.paidOrders, CostPerTransaction: perTx(b.txCost, b.paidOrders),
		})
	}
	for _, m := range l.models {
		s.ByModel = append(s.ByModel, ModelStats{Provider: m.Provider, Model: m.Model, PromptTokens: m.PromptTokens, CompletionTokens: m.Completion,
			CachedPromptTokens: m.CachedPrompt, LLMCost: m.Cost.String()})
	}
	sort.Slice(s.ByModel, func(i, j int) bool {
		if s.ByModel[i].Provider != s.ByModel[j].Provider {
			return s.ByModel[i].Provider < s.ByModel[j].Provider
		}
		return s.ByModel[i].Model < s.ByModel[j].Model
	})
	return s
}
