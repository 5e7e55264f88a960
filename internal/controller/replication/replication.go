// Package replication is being written; its constructors return no controller yet.
package replication

import "github.com/wharf-io/wharf/internal/controller/manager"

// NewReplicationControllers returns no controller until the package is written.
func NewReplicationControllers(*manager.Context) (manager.Controller, error) { return nil, nil }

// NewReplicaSets returns no controller until the package is written.
func NewReplicaSets(*manager.Context) (manager.Controller, error) { return nil, nil }
