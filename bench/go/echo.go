// The Go echo server of bench/echo.sh: one goroutine per connection, GOMAXPROCS=1 unless
// the environment sets GOMAXPROCS (the script's --cores N mode sets it to N; the script
// pins the process to as many CPUs). Same behaviour as the Rust servers
// (bench/src/echo.rs): binds 127.0.0.1, prints "port N" when ready, per connection reads
// up to 4096 bytes and writes them back until EOF. Go sets TCP_NODELAY on accepted
// connections by default, as shrapnel's accept does.
//
// Usage: echo [PORT]
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"
)

const readSize = 4096

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	port := 0
	if len(os.Args) > 1 {
		p, err := strconv.Atoi(os.Args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "usage: echo [PORT]  (bad port: %v)\n", err)
			os.Exit(2)
		}
		port = p
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo_go: bind: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo_go: accept: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}
