//go:build postgres

package pgdbtest

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of the test server that can take the
// database away as a restart does — every connection drops, new ones are
// refused — without touching the server, which other tests share.
type Proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]bool
	down  bool
	armed []byte // cut a connection after the client's next message once it sent this
	cuts  int
}

func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { l.Close(); p.Cut() })
	go p.serve()
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		// Registered under the same lock as the look at down: a Cut
		// either sees the pair and closes it, or the pair sees down.
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c], p.conns[s] = true, true
		}
		p.mu.Unlock()
		if down {
			c.Close() // the server is "restarting": connection refused
			s.Close()
			continue
		}
		var blackhole atomic.Bool
		go p.pipe(s, c, nil, &blackhole)
		go p.pipe(c, s, s, &blackhole)
	}
}

// pipe copies from to to. On the client's side (server set) it watches
// for the armed text: once the client sent it, the client's next message
// still reaches the server, but no answer reaches the client, and both
// connections close a moment later.
func (p *Proxy) pipe(from, to, server net.Conn, blackhole *atomic.Bool) {
	defer func() {
		from.Close()
		to.Close()
		p.mu.Lock()
		delete(p.conns, from)
		delete(p.conns, to)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	cutNext := false
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if server == nil && blackhole.Load() {
				continue // the answer is lost
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
			if server != nil {
				p.mu.Lock()
				if cutNext && !blackhole.Load() {
					p.cuts++
					blackhole.Store(true)
					time.AfterFunc(300*time.Millisecond, func() { from.Close(); to.Close() })
				}
				if p.armed != nil && bytes.Contains(buf[:n], p.armed) {
					p.armed, cutNext = nil, true
				}
				p.mu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut drops every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Through returns u with its host and port replaced by the proxy's.
func (p *Proxy) Through(t testing.TB, u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Host = p.Addr()
	return pu.String()
}

// Arm makes the proxy cut the connection on which the client sends text:
// the client's next message on it still reaches the server, but no answer
// reaches the client (an acknowledgement lost), and the connection closes
// a moment later.
func (p *Proxy) Arm(text string) {
	p.mu.Lock()
	p.armed = []byte(text)
	p.mu.Unlock()
}

// Cuts is how many connections an armed text has cut.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}
