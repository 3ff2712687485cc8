package logging

// gramFilter finds, in one pass over a text whatever their number, where
// the needles a Redactor looks for begin: the secret values of 4 bytes or
// more, and each partialSecret's blocks and head. A needle is found by a
// hash of its first four bytes, then compared whole. A scan per needle
// (bytes.Contains) cost a Has over 4 KiB of a forwarded stream's long line
// 60 passes with five secrets, their encoded forms and their blocks.
type gramFilter struct {
	first   [1 << gramBits]uint16 // 1 + the index of a bucket's first needle; 0: none
	needles []gramNeedle
}

const gramBits = 12

type gramNeedle struct {
	s     string
	owner int    // the index of its partialSecret; -1 for a value
	next  uint16 // 1 + the index of the next needle in its bucket; 0: none
}

func gramHash(g uint32) uint32 { return (g * 0x9E3779B1) >> (32 - gramBits) }

// add adds needle s (4 bytes or more) of owner; false when the filter is
// full.
func (f *gramFilter) add(s string, owner int) bool {
	if len(f.needles) >= 1<<16-1 {
		return false
	}
	h := gramHash(uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24)
	f.needles = append(f.needles, gramNeedle{s: s, owner: owner, next: f.first[h]})
	f.first[h] = uint16(len(f.needles))
	return true
}

// scan calls found with the owner of each needle in t, in the order of
// where they begin, until found returns false.
func scan[T string | []byte](f *gramFilter, t T, found func(owner int) bool) {
	if len(f.needles) == 0 || len(t) < 4 {
		return
	}
	g := uint32(t[0])<<8 | uint32(t[1])<<16 | uint32(t[2])<<24
	for i := 0; i+4 <= len(t); i++ {
		g = g>>8 | uint32(t[i+3])<<24
		for j := f.first[gramHash(g)]; j != 0; {
			n := &f.needles[j-1]
			j = n.next
			if len(t)-i < len(n.s) {
				continue
			}
			k := 4
			for k < len(n.s) && t[i+k] == n.s[k] {
				k++
			}
			if k == len(n.s) && t[i] == n.s[0] && t[i+1] == n.s[1] && t[i+2] == n.s[2] && t[i+3] == n.s[3] {
				if !found(n.owner) {
					return
				}
			}
		}
	}
}
