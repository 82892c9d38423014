package discovery_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

// nopDataplane programs nothing and keeps nothing.
type nopDataplane struct{}

func (nopDataplane) Apply(context.Context, *discovery.Table) error { return nil }

// benchmarkUpdateToPublish measures one task update (a healthy task of /group0/app0
// flips between running and killing, so a VIP's weights change) through to
// a published Table, with nApps apps of 10 tasks each in the model, a store,
// and a dataplane that does nothing.
func benchmarkUpdateToPublish(b *testing.B, nApps int) {
	apps := discovery.BenchApps(nApps, 10)
	db := openBolt(b, filepath.Join(b.TempDir(), "vipbridge.db"))
	defer db.Close()
	r, err := discovery.NewReconciler(discovery.Config{Store: db, Dataplane: nopDataplane{},
		Sources: []discovery.SourceConfig{{Name: "marathon", Source: snapshot(apps), Interval: time.Hour}}})
	if err != nil {
		b.Fatal(err)
	}
	sub, unsub := r.Subscribe()
	defer unsub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !r.Status().Synced || r.Table().Stale || r.Table().VIPs.Len() == 0 {
		select {
		case <-sub:
		case <-time.After(time.Minute):
			b.Fatal("the reconciler did not sync")
		}
	}
	task := apps[0].Tasks[1] // healthy: its weight follows its state
	states := []discovery.TaskState{discovery.TaskKilling, discovery.TaskRunning}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		gen := r.Table().Generation
		task.State = states[i%2]
		r.Update(discovery.Update{Kind: discovery.UpdateTask, AppID: apps[0].ID, Task: task})
		for r.Table().Generation == gen {
			select {
			case <-sub:
			case <-time.After(time.Minute):
				b.Fatal("the update was never published")
			}
		}
		i++
	}
}

func BenchmarkUpdateToPublish1kApps(b *testing.B)  { benchmarkUpdateToPublish(b, 1000) }
func BenchmarkUpdateToPublish10kApps(b *testing.B) { benchmarkUpdateToPublish(b, 10000) }
