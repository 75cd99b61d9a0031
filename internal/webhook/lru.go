package webhook

import "container/list"

// lru is a bounded set of recent delivery ids (digests): adding one past
// the bound forgets the least recently seen.
type lru struct {
	max   int
	order *list.List // front: most recent
	index map[[32]byte]*list.Element
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), index: map[[32]byte]*list.Element{}}
}

// add records key and reports whether it was new; seeing a key again
// makes it the most recent.
func (l *lru) add(key [32]byte) bool {
	if e, ok := l.index[key]; ok {
		l.order.MoveToFront(e)
		return false
	}
	l.index[key] = l.order.PushFront(key)
	if l.order.Len() > l.max {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.index, old.Value.([32]byte))
	}
	return true
}
