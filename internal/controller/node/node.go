// Package node is being written; its constructors return no controller yet.
package node

import "github.com/wharf-io/wharf/internal/controller/manager"

// NewIPAM returns no controller until the package is written.
func NewIPAM(*manager.Context) (manager.Controller, error) { return nil, nil }

// NewLifecycle returns no controller until the package is written.
func NewLifecycle(*manager.Context) (manager.Controller, error) { return nil, nil }
