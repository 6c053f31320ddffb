// kcpgo_peer: the kcp-go side of moongate's KCP interoperability test.
//
// Built offline in GOPATH mode against Debian's golang-github-xtaci-kcp-dev
// (see CMakeLists.txt here). Sessions use no FEC and no crypto
// (ListenWithOptions/DialWithOptions with block nil and 0 shards): kcp-go
// then adds no header at all and every UDP datagram is plain KCP.
//
// Modes (driven by interop_kcpgo.c, which owns the lossy UDP socket):
//
//	server              listen on 127.0.0.1:0, print "PORT <n>", echo every
//	                    byte of every accepted UDPSession back; on stdin EOF
//	                    print a DONE line and exit (1 if kcp-go rejected any
//	                    datagram).
//	client PORT         UDPSession to 127.0.0.1:PORT; send -n framed messages,
//	                    read the echo back and verify it exactly, in order.
//	rawclient PORT      the same with kcp-go's KCP object driven directly over
//	                    a UDP socket: each frame is ONE KCP message, so
//	                    messages longer than the mss go out fragmented (frg >
//	                    0), which UDPSession.Write never does (it cuts writes
//	                    into mss-sized messages); the echo must come back one
//	                    message per frame.
//
// Frame: u32le payload length, u32le sequence number, payload. The payload
// is a function of (seed, seq) so the receiver needs no copy of what it sent.
// UDPSession is a byte stream to its user, so client mode re-frames with
// io.ReadFull; rawclient checks message boundaries too.
//
// Everything is bounded: -n messages, -timeout for the whole run (then exit
// 3), and stdin EOF ends the process (the driver holds the write end; if it
// dies, this peer dies with it).
//
// Exit codes: 0 success, 1 verification or kcp-go input error, 2 I/O error,
// 3 deadline, 4 usage, 5 stdin closed before a client finished.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

var (
	flagN       = flag.Int("n", 2000, "messages to send (client modes)")
	flagMax     = flag.Int("max", 4000, "largest payload in bytes")
	flagSeed    = flag.Uint64("seed", 1, "seed of message lengths and content")
	flagTimeout = flag.Duration("timeout", 60*time.Second, "deadline for the whole run")
	flagMtu     = flag.Int("mtu", 1200, "KCP mtu (kcp-go accepts at most 1500)")
	flagWnd     = flag.Int("wnd", 128, "send and receive window, in segments")
	flagStdin   = flag.Bool("stdin", true, "exit when stdin reaches EOF")
)

const hdrLen = 8

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// payloadLen: mostly uniform in [1, max]; every 8th frame sits on a
// fragment boundary (k*mss-1, k*mss, k*mss+1 bytes in total) for rawclient.
func payloadLen(seq uint32) int {
	r := splitmix(*flagSeed<<32 ^ uint64(seq))
	mss := *flagMtu - 24
	if seq%8 == 0 {
		total := int(r>>8%3+1)*mss + int(r%3) - 1
		if n := total - hdrLen; n >= 1 && n <= *flagMax {
			return n
		}
	}
	return int(r%uint64(*flagMax)) + 1
}

func fillPayload(p []byte, seq uint32) {
	s := splitmix(*flagSeed<<32 ^ uint64(seq) ^ 0x5555)
	for i := range p {
		if i%8 == 0 {
			s = splitmix(s)
		}
		p[i] = byte(s >> (8 * uint(i%8)))
	}
}

func frame(seq uint32) []byte {
	n := payloadLen(seq)
	f := make([]byte, hdrLen+n)
	binary.LittleEndian.PutUint32(f[0:], uint32(n))
	binary.LittleEndian.PutUint32(f[4:], seq)
	fillPayload(f[hdrLen:], seq)
	return f
}

// checkFrame compares a received frame (header included) with the expected
// one; it returns "" when they are equal.
func checkFrame(got []byte, seq uint32) string {
	want := frame(seq)
	if len(got) != len(want) {
		return fmt.Sprintf("frame %d: %d bytes, want %d", seq, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Sprintf("frame %d: byte %d is 0x%02x, want 0x%02x", seq, i, got[i], want[i])
		}
	}
	return ""
}

func die(code int, format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "kcpgo_peer: "+format+"\n", a...)
	os.Exit(code)
}

// segStats: kcp-go's own counters kept by its KCP object (all modes).
func segStats() string {
	s := kcp.DefaultSnmp.Copy()
	return fmt.Sprintf("retrans=%d (fast %d, early %d, rto %d) repeat=%d",
		s.RetransSegs, s.FastRetransSegs, s.EarlyRetransSegs, s.LostSegs, s.RepeatSegs)
}

// stats adds the counters only UDPSession and Listener keep.
func stats() string {
	s := kcp.DefaultSnmp.Copy()
	return fmt.Sprintf("in_pkts=%d out_pkts=%d %s kcp_in_errors=%d",
		s.InPkts, s.OutPkts, segStats(), s.KCPInErrors)
}

func configure(s *kcp.UDPSession) {
	s.SetStreamMode(false)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(*flagWnd, *flagWnd)
	if !s.SetMtu(*flagMtu) {
		die(4, "mtu %d refused", *flagMtu)
	}
}

// ---- server ----

func server() {
	l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		die(2, "listen: %v", err)
	}
	fmt.Printf("PORT %d\n", l.Addr().(*net.UDPAddr).Port)

	var sessions, reads, bytes, errs int64
	done := make(chan struct{})
	if *flagStdin {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			close(done)
		}()
	}
	go func() {
		for {
			s, err := l.AcceptKCP()
			if err != nil {
				return
			}
			configure(s)
			atomic.AddInt64(&sessions, 1)
			go func() {
				defer s.Close()
				buf := make([]byte, 65536)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					atomic.AddInt64(&reads, 1)
					atomic.AddInt64(&bytes, int64(n))
					if _, err := s.Write(buf[:n]); err != nil {
						atomic.AddInt64(&errs, 1)
						return
					}
				}
			}()
		}
	}()

	select {
	case <-done:
	case <-time.After(*flagTimeout):
		die(3, "server: deadline of %v reached", *flagTimeout)
	}
	inErrs := kcp.DefaultSnmp.Copy().KCPInErrors
	fmt.Printf("DONE server sessions=%d reads=%d bytes=%d write_errors=%d %s\n",
		atomic.LoadInt64(&sessions), atomic.LoadInt64(&reads),
		atomic.LoadInt64(&bytes), atomic.LoadInt64(&errs), stats())
	if inErrs != 0 || atomic.LoadInt64(&errs) != 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

// ---- client (UDPSession) ----

func client(addr string, n int) {
	start := time.Now()
	s, err := kcp.DialWithOptions(addr, nil, 0, 0)
	if err != nil {
		die(2, "dial: %v", err)
	}
	configure(s)
	s.SetDeadline(start.Add(*flagTimeout))

	werr := make(chan error, 1)
	go func() {
		for seq := 0; seq < n; seq++ {
			if _, err := s.Write(frame(uint32(seq))); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()

	var total int64
	hdr := make([]byte, hdrLen)
	for seq := 0; seq < n; seq++ {
		if _, err := io.ReadFull(s, hdr); err != nil {
			die(readErrCode(err), "client: reading frame %d: %v (%s)", seq, err, stats())
		}
		plen := binary.LittleEndian.Uint32(hdr)
		if plen < 1 || plen > uint32(*flagMax) {
			die(1, "client: frame %d: bad length %d (seq field %d)",
				seq, plen, binary.LittleEndian.Uint32(hdr[4:]))
		}
		f := make([]byte, hdrLen+int(plen))
		copy(f, hdr)
		if _, err := io.ReadFull(s, f[hdrLen:]); err != nil {
			die(readErrCode(err), "client: reading frame %d: %v", seq, err)
		}
		if msg := checkFrame(f, uint32(seq)); msg != "" {
			die(1, "client: %s", msg)
		}
		total += int64(len(f))
	}
	if err := <-werr; err != nil {
		die(2, "client: write: %v", err)
	}
	st := kcp.DefaultSnmp.Copy()
	fmt.Printf("kcpgo client: OK %d messages, %d bytes echoed in %d ms, conv 0x%08x, %s\n",
		n, total, time.Since(start).Milliseconds(), s.GetConv(), stats())
	s.Close()
	if st.KCPInErrors != 0 {
		die(1, "client: kcp-go rejected %d datagrams", st.KCPInErrors)
	}
	os.Exit(0)
}

func readErrCode(err error) int {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return 3
	}
	if time.Now().After(startTime.Add(*flagTimeout)) {
		return 3
	}
	return 2
}

// ---- rawclient (kcp-go's KCP object over our own UDP socket) ----

func rawclient(addr string, n int) {
	start := time.Now()
	deadline := start.Add(*flagTimeout)
	raddr, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		die(4, "resolve: %v", err)
	}
	conn, err := net.DialUDP("udp4", nil, raddr)
	if err != nil {
		die(2, "dial: %v", err)
	}
	var conv uint32
	for conv == 0 {
		binary.Read(rand.Reader, binary.LittleEndian, &conv)
	}
	var outPkts, inPkts, sendErrs int64
	k := kcp.NewKCP(conv, func(buf []byte, size int) {
		outPkts++
		if _, err := conn.Write(buf[:size]); err != nil {
			sendErrs++
		}
	})
	k.NoDelay(1, 10, 2, 1)
	k.WndSize(*flagWnd, *flagWnd)
	if k.SetMtu(*flagMtu) != 0 {
		die(4, "mtu %d refused", *flagMtu)
	}

	buf := make([]byte, 65536)
	msg := make([]byte, 1<<20)
	var total, inErrs int64
	sent, recvd := 0, 0
	for recvd < n {
		now := time.Now()
		if now.After(deadline) {
			die(3, "rawclient: deadline: sent %d, verified %d of %d", sent, recvd, n)
		}
		for sent < n && k.WaitSnd() < 2*(*flagWnd) {
			if r := k.Send(frame(uint32(sent))); r != 0 {
				die(1, "rawclient: Send(frame %d) = %d", sent, r)
			}
			sent++
		}
		k.Update()
		conn.SetReadDeadline(now.Add(2 * time.Millisecond))
		nr, err := conn.Read(buf)
		if err == nil {
			inPkts++
			if r := k.Input(buf[:nr], true, false); r != 0 {
				inErrs++
				fmt.Fprintf(os.Stderr, "kcpgo_peer: rawclient: Input(%d bytes) = %d\n", nr, r)
			}
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			die(2, "rawclient: read: %v", err)
		}
		for {
			sz := k.Recv(msg)
			if sz == -2 {
				die(1, "rawclient: message larger than %d bytes", len(msg))
			}
			if sz < 0 {
				break
			}
			if m := checkFrame(msg[:sz], uint32(recvd)); m != "" {
				die(1, "rawclient: message %d: %s", recvd, m)
			}
			total += int64(sz)
			recvd++
		}
	}
	// A few more flushes so the last acks reach the server.
	for i := 0; i < 5; i++ {
		k.Update()
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("kcpgo rawclient: OK %d messages, %d bytes echoed in %d ms, conv 0x%08x, in_pkts=%d out_pkts=%d send_errors=%d %s input_errors=%d\n",
		n, total, time.Since(start).Milliseconds(), conv, inPkts, outPkts, sendErrs, segStats(), inErrs)
	if inErrs != 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

var startTime = time.Now()

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: kcpgo_peer [flags] server | client PORT | rawclient PORT\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) < 1 || *flagN < 0 || *flagMax < 1 || *flagMtu > 1500 || *flagMtu < 50 {
		flag.Usage()
		os.Exit(4)
	}
	// Backstop: whatever blocks, the process ends shortly after its deadline.
	time.AfterFunc(*flagTimeout+5*time.Second, func() {
		die(3, "deadline of %v passed (%s)", *flagTimeout, stats())
	})

	switch args[0] {
	case "server":
		server()
	case "client", "rawclient":
		if len(args) != 2 {
			flag.Usage()
			os.Exit(4)
		}
		port, err := strconv.Atoi(args[1])
		if err != nil || port <= 0 || port > 65535 {
			die(4, "bad port %q", args[1])
		}
		if *flagStdin {
			go func() {
				io.Copy(io.Discard, os.Stdin)
				die(5, "stdin closed before the client finished")
			}()
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if args[0] == "client" {
			client(addr, *flagN)
		} else {
			rawclient(addr, *flagN)
		}
	default:
		flag.Usage()
		os.Exit(4)
	}
}
