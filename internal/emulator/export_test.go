package emulator

import (
	"math/rand/v2"
	"sync"
)

// SeedRandomForTest makes the emulator's ids, MAC addresses and key material reproducible (a PCG
// seeded with seed) until restore is called. Tests that use it must not run in parallel.
func SeedRandomForTest(seed uint64) (restore func()) {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed))
	oldIntN, oldRead := randIntN, randRead
	randIntN = func(n int) int {
		mu.Lock()
		defer mu.Unlock()
		return rng.IntN(n)
	}
	randRead = func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return len(b), nil
	}
	return func() { randIntN, randRead = oldIntN, oldRead }
}
