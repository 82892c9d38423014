package marathontest

import (
	"net/http"
)

// The big answers (/v2/apps?embed=apps.tasks, /v2/tasks) are written as
// Marathon's Jackson streaming writes them: item by item, each encoded
// straight to the connection, instead of marshalled whole first. The state
// is copied under the server's mutex (a consistent snapshot, as Marathon's
// repository read is), then rendered and written without it, so a slow
// reader holds up neither events nor control calls, and the client decodes
// the first apps while the last are still being encoded. The bytes are
// those json.Marshal gave for the whole answer built as maps
// (render_test.go).

// snapshotApps copies the apps in id order with their tasks, so that they
// can be rendered after s.mu is released: tasks are copied by value (their
// slices are never changed in place) and each app gets its own task list.
func (c *cluster) snapshotApps() []*app {
	apps := c.sortedApps()
	n := 0
	for _, a := range apps {
		n += len(a.tasks)
	}
	tasks := make([]task, 0, n) // one allocation for every task copy
	out := make([]app, len(apps))
	ptrs := make([]*app, len(apps))
	for i, a := range apps {
		out[i] = *a
		out[i].tasks = make([]*task, len(a.tasks))
		for j, t := range a.tasks {
			tasks = append(tasks, *t)
			out[i].tasks[j] = &tasks[len(tasks)-1]
		}
		ptrs[i] = &out[i]
	}
	return ptrs
}

// streamBufSize is how much of an answer is buffered before it is written
// to the connection.
const streamBufSize = 64 << 10

// writeJSONList answers 200 with {"<key>": [item(0), ..., item(n-1)]},
// item appending the JSON of one element to b, and writes the answer in
// pieces of about streamBufSize as it goes. A write error (the client
// went away) ends the answer early.
func writeJSONList(w http.ResponseWriter, key string, n int, item func(b []byte, i int) []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	b := make([]byte, 0, streamBufSize+streamBufSize/2)
	b = append(b, '{')
	b = appendString(b, key)
	b = append(b, ":["...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = item(b, i)
		if len(b) >= streamBufSize {
			if _, err := w.Write(b); err != nil {
				return
			}
			b = b[:0]
		}
	}
	b = append(b, "]}"...)
	w.Write(b)
}
