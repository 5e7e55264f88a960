// Package apiserver holds the API server benchmark: start-up time, memory
// with 10,000 Services and Endpoints, create throughput and write-to-watch
// latency, measured against real `wharf up` processes on loopback ports.
//
// It runs only with WHARF_BENCH=1 (see bench/apiserver.sh and `make bench`),
// so a plain `go test ./...` skips it.
package apiserver
