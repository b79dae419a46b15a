package stages

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/pipe-dsl/pipe/component"
	"github.com/pipe-dsl/pipe/state"
)

// Scopes of dedupe and throttle: per process (the default), or shared by
// every replica through the pipeline's `state:` store.
const (
	scopeProcess = "process"
	scopeGlobal  = "global"
)

// needState refuses scope: global without a state block, with the fix.
func needState(env component.Env) error {
	if env.State == nil {
		return errors.New(`scope: global needs a top-level state: block shared by the replicas, e.g. state: {redis: {url: "redis://127.0.0.1:6379/0"}}`)
	}
	return nil
}

// guardFor returns the store guard of a global stage: the standard retry
// backoff and a breaker that blocks while the store is down.
func guardFor(env component.Env) (*state.Guard, error) {
	return state.NewGuard(env.Node+" state store", env.Clock, env.Logger, time.Second)
}

// lazy opens a store handle on first use, so compiling does no I/O and
// holds no connection; close releases it once.
type lazy[T interface{ Close() error }] struct {
	open func() (T, error)

	mu     sync.Mutex
	v      T
	opened bool
}

func (l *lazy[T]) get() (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.opened {
		v, err := l.open()
		if err != nil {
			return v, err
		}
		l.v, l.opened = v, true
	}
	return l.v, nil
}

func (l *lazy[T]) Close(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.opened {
		return nil
	}
	l.opened = false
	return l.v.Close()
}

// instanceID names this process's claims: random, so two replicas never
// mistake each other's claim for their own.
func instanceID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
