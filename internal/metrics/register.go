// Package metrics holds what vipbridge's packages share about Prometheus
// metrics: registering them with the registerer their Config names.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers cs with reg and returns every registration error
// (a duplicate name, above all). A nil reg registers nothing: a part built
// without a Registerer keeps its metrics to itself.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
