package framework

import (
	"bytes"
	"os"
	"testing"
)

// AgentOptions say how to start a `wharf agent`.
type AgentOptions struct {
	// Server is the API server's URL as the agent reaches it.
	Server string
	// TokenFile holds the join token (the server's <data-dir>/token).
	TokenFile string
	// Netns is the sandbox node to run in.
	Netns string
	// Extra flags (node name, netns prefix, ...).
	Extra []string
}

// Agent is one running `wharf agent`.
type Agent struct {
	t       testing.TB
	DataDir string
	Args    []string
	srv     *Server // only for its command and log helpers
}

// StartAgent starts an agent, stopped when the test ends. It does not wait
// for the node to register: tests wait for what they need.
func StartAgent(t testing.TB, o AgentOptions) *Agent {
	t.Helper()
	dir, err := os.MkdirTemp(shmBase(), "wharf-e2e-agent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &Agent{t: t, DataDir: dir}
	a.Args = append([]string{"agent", "--server", o.Server, "--token-file", o.TokenFile, "--data-dir", dir}, o.Extra...)
	a.srv = &Server{t: t, Bin: Binary(t), DataDir: dir, Netns: o.Netns, Args: a.Args}
	a.start()
	t.Cleanup(a.Stop)
	return a
}

func (a *Agent) start() {
	s := a.srv
	s.log = &bytes.Buffer{}
	s.cmd = s.command(s.Bin, s.Args...)
	s.cmd.Stdout = &lockedWriter{w: s.log, mu: &s.mu}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd interface{ Wait() error }, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
}

// Log is what the agent printed so far.
func (a *Agent) Log() string { return a.srv.Log() }

// Stop stops the agent cleanly (SIGTERM, then SIGKILL after 20 s).
func (a *Agent) Stop() { a.srv.Stop() }

// Kill9 kills the agent as a crash would.
func (a *Agent) Kill9() { a.srv.Kill9() }

// Restart starts the same agent again.
func (a *Agent) Restart() {
	a.Stop()
	a.start()
}

// PID is the agent's process id.
func (a *Agent) PID() int { return a.srv.PID() }

// shmBase is where data dirs go: tmpfs when there is one.
func shmBase() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}
