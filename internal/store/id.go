package store

import (
	"crypto/rand"
	"sync"
	"time"
)

// crockford is Crockford's base 32, as ULIDs use: no I, L, O or U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes ULID-like ids: 48 bits of Unix milliseconds then 80 random
// bits, as 26 characters of Crockford base 32. Ids from one generator
// sort in the order they were made: within a millisecond, or when the
// clock steps back, the random part of the previous id is incremented.
type idGen struct {
	mu   sync.Mutex
	ms   uint64
	rand [10]byte
}

var ids idGen

// NewID returns a new unique id that sorts after the ids this process made
// before (a ULID: 26 characters, time first), for records and stage runs.
func NewID() string { return ids.next(time.Now()) }

func (g *idGen) next(now time.Time) string {
	ms := uint64(now.UnixMilli())
	g.mu.Lock()
	switch {
	case g.ms != 0 && ms <= g.ms && increment(&g.rand):
		ms = g.ms
	default:
		if g.ms != 0 && ms <= g.ms { // the random part overflowed
			ms = g.ms + 1
		}
		if _, err := rand.Read(g.rand[:]); err != nil {
			panic(err) // crypto/rand never fails on supported systems
		}
		// Leave room to increment many times within one millisecond.
		g.rand[0] &= 0x7f
	}
	g.ms = ms
	var b [16]byte
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	copy(b[6:], g.rand[:])
	g.mu.Unlock()
	return encode(b)
}

// increment adds one to r, big-endian; false when it overflowed.
func increment(r *[10]byte) bool {
	for i := len(r) - 1; i >= 0; i-- {
		r[i]++
		if r[i] != 0 {
			return true
		}
	}
	return false
}

// encode writes 128 bits as 26 base-32 digits, the first holding 3 bits.
func encode(b [16]byte) string {
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
