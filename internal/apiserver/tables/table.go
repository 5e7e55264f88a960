// Package tables renders objects as metav1.Table rows with the columns
// upstream's printers give them, so `kubectl get` prints what a Kubernetes
// user expects (services: NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE, and
// SELECTOR with -o wide). Columns with Priority 1 appear only with -o wide.
package tables

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Column is one column definition: name, type and, for -o wide only,
// Priority 1.
type Column = metav1.TableColumnDefinition

// Printer renders one kind: its columns and a function giving a row's cells
// (after the NAME cell, which every printer but events' starts with).
type Printer struct {
	Columns []Column
	// Cells returns the row's cells in column order.
	Cells func(obj runtime.Object) []interface{}
}

// ConvertToTable implements rest.TableConvertor for single objects and lists.
func (p *Printer) ConvertToTable(ctx context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{ColumnDefinitions: p.Columns}
	if meta.IsListType(obj) {
		items, err := meta.ExtractList(obj)
		if err != nil {
			return nil, err
		}
		table.Rows = make([]metav1.TableRow, 0, len(items))
		for _, item := range items {
			table.Rows = append(table.Rows, p.row(item))
		}
		if l, err := meta.ListAccessor(obj); err == nil {
			table.ResourceVersion = l.GetResourceVersion()
			table.Continue = l.GetContinue()
			table.RemainingItemCount = l.GetRemainingItemCount()
		}
		return table, nil
	}
	table.Rows = []metav1.TableRow{p.row(obj)}
	if m, err := meta.Accessor(obj); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}
	return table, nil
}

func (p *Printer) row(obj runtime.Object) metav1.TableRow {
	return metav1.TableRow{Cells: p.Cells(obj), Object: runtime.RawExtension{Object: obj}}
}

// name is the NAME column every kind starts with.
var name = Column{Name: "Name", Type: "string", Format: "name", Description: "Name must be unique within a namespace."}

// age is the AGE column.
var age = Column{Name: "Age", Type: "string", Description: "CreationTimestamp is a timestamp representing the server time when this object was created."}

func col(n string) Column { return Column{Name: n, Type: "string"} }

func intCol(n string) Column { return Column{Name: n, Type: "integer"} }

func wide(c Column) Column {
	c.Priority = 1
	return c
}

// Age renders the time since t as kubectl does ("5m", "2d3h"), or
// "<unknown>" for a zero time.
func Age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// moreList joins up to max items and says how many more there are, as
// upstream's printers do ("a,b,c + 2 more...").
func moreList(items []string, max int, sep string) string {
	if len(items) <= max {
		return joinOr(items, sep)
	}
	return fmt.Sprintf("%s + %d more...", joinOr(items[:max], sep), len(items)-max)
}

func joinOr(items []string, sep string) string {
	out := ""
	for i, s := range items {
		if i > 0 {
			out += sep
		}
		out += s
	}
	return out
}
