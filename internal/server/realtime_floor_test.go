package server

import (
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkLoopbackFanoutFloor measures what this machine allows before
// any WebSocket, hub or Switchyard code runs: the leanest possible
// fan-out, one goroutine writing a 64-byte message to each of 1,000
// loopback TCP connections in turn, read by a goroutine per connection on
// the other side, one message in flight at a time. It reports the
// latency of every delivery (p50_ms, p99_ms): the time one round of
// writes and reads takes, spread over the subscribers. A publish →
// receive target for 1,000 subscribers cannot be lower than this on the
// same machine, with the server and its clients sharing the cores:
//
//	go test -run '^$' -bench LoopbackFanoutFloor -benchtime 200x ./internal/server/
func BenchmarkLoopbackFanoutFloor(b *testing.B) {
	const subscribers, size = 1000, 64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()

	var (
		mu        sync.Mutex
		latencies []float64 // milliseconds
		round     sync.WaitGroup
		readers   sync.WaitGroup
	)
	servers := make([]net.Conn, 0, subscribers)
	defer func() {
		for _, c := range servers {
			c.Close()
		}
		readers.Wait()
	}()
	for range subscribers {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		servers = append(servers, server)
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer client.Close()
			buf := make([]byte, size)
			for {
				if _, err := io.ReadFull(client, buf); err != nil {
					return
				}
				sent := int64(binary.LittleEndian.Uint64(buf))
				ms := float64(time.Now().UnixNano()-sent) / 1e6
				mu.Lock()
				latencies = append(latencies, ms)
				mu.Unlock()
				round.Done()
			}
		}()
	}

	msg := make([]byte, size)
	b.ResetTimer()
	for range b.N {
		round.Add(subscribers)
		binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		for _, c := range servers {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		round.Wait()
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(latencies[len(latencies)/2], "p50_ms")
	b.ReportMetric(latencies[len(latencies)*99/100], "p99_ms")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "round_ms")
}
