// Package servicelb is being written; its constructors return no controller yet.
package servicelb

import "github.com/wharf-io/wharf/internal/controller/manager"

// New returns no controller until the package is written.
func New(*manager.Context) (manager.Controller, error) { return nil, nil }
