// Package controllers benchmarks the controllers: the time for a
// ReplicationController of 100 replicas to have all its pods created.
// Run it with `WHARF_BENCH=1 go test -v -run TestControllersBench ./bench/controllers/`.
package controllers
