package mqtt

import (
	"hash/fnv"
	"sync"

	"github.com/eclipse/paho.golang/paho"
)

// redeliveries lets a nack cost one message, not every message after it.
//
// MQTT has no negative acknowledgement: the only way to have the broker
// send a message again is to drop the connection without PUBACKing it, and
// PUBACKs go out in order of receipt [MQTT-4.6.0-2], so every message
// received after the failed one is redelivered too, on the next connection,
// with its original packet identifier [MQTT-4.4.0-1] and the DUP flag.
// redeliveries remembers, per packet identifier, the messages the pipeline
// still holds or already delivered whose PUBACK was not sent; a DUP copy
// of one of them (same identifier, topic and payload) is not passed on
// again: it is acked as soon as the first copy is delivered. Only the
// messages that failed go through the pipeline twice.
//
// Safe for concurrent use. Entries end when their PUBACK is sent (forget),
// when they fail, and all at once when the broker starts a new session.
type redeliveries struct {
	mu sync.Mutex
	m  map[uint16]*copyState
}

// copyState is a message the pipeline holds (delivered false) or has
// delivered without its PUBACK having been sent.
type copyState struct {
	fp        uint64
	delivered bool
	// dup is a redelivered copy waiting for the first one's outcome.
	dup *paho.PublishReceived
}

func fingerprint(p *paho.Publish) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p.Topic))
	h.Write([]byte{0})
	h.Write(p.Payload)
	return h.Sum64()
}

// admit reports whether pr is to be passed on. A copy of a message already
// delivered is acked here; a copy of one still in the pipeline waits for
// its outcome.
func (r *redeliveries) admit(pr paho.PublishReceived) bool {
	p := pr.Packet
	if p.QoS == 0 {
		return true
	}
	fp := fingerprint(p)
	r.mu.Lock()
	if r.m == nil {
		r.m = map[uint16]*copyState{}
	}
	c, ok := r.m[p.PacketID]
	if !ok || !p.Duplicate() || c.fp != fp {
		r.m[p.PacketID] = &copyState{fp: fp}
		r.mu.Unlock()
		return true
	}
	if !c.delivered {
		c.dup = &pr
		r.mu.Unlock()
		return false
	}
	r.mu.Unlock()
	// Outside the lock: paho calls forget holding its ack tracker's lock.
	_ = pr.Client.Ack(p)
	return false
}

// resolved records the pipeline's outcome for p. It returns the redelivered
// copy that was waiting for it, if any: to be acked on success; on failure
// its connection must be dropped for the broker to send it again.
func (r *redeliveries) resolved(p *paho.Publish, ok bool) *paho.PublishReceived {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, found := r.m[p.PacketID]
	if !found || c.fp != fingerprint(p) {
		return nil
	}
	dup := c.dup
	c.dup = nil
	if ok {
		c.delivered = true
	} else {
		delete(r.m, p.PacketID)
	}
	return dup
}

// forget drops the entry of a message whose PUBACK was sent.
func (r *redeliveries) forget(id uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.m[id]; ok && c.delivered && c.dup == nil {
		delete(r.m, id)
	}
}

// reset forgets everything: the broker started a new session, which may
// reuse packet identifiers for other messages.
func (r *redeliveries) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.m)
}
