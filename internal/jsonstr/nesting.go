package jsonstr

// NestedOver reports whether s, walked as JSON, opens more than limit
// arrays and objects at once; brackets inside strings do not count. It
// keeps one counter: no recursion and no allocation however deep s goes.
// gjson's validation recurses once per level (about 128 bytes of stack
// each), so text from a client or a provider is measured with this first:
// a body of brackets as large as the body limits allow passed the
// runtime's 1 GB stack limit, a fatal error that ends the process. Text
// that is not JSON is left to the parse to refuse (an unterminated string
// ends the walk). Text of at most limit bytes cannot nest deeper and is
// answered at once.
func NestedOver(s string, limit int) bool {
	if len(s) <= limit {
		return false
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{', '[':
			if depth++; depth > limit {
				return true
			}
		case '}', ']':
			depth--
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++ // the escaped byte is no delimiter
				}
			}
		}
	}
	return false
}
