package marathontest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
)

// The big answers (/v2/apps?embed=apps.tasks, /v2/tasks) are written as
// Marathon's Jackson streaming writes them: item by item, each encoded
// straight to the connection, instead of marshalled whole first. The state
// is copied under the server's mutex (a consistent snapshot, as Marathon's
// repository read is), then rendered and written without it, so a slow
// reader holds up neither events nor control calls, and the client decodes
// the first apps while the last are still being encoded. The bytes are
// those json.Marshal gives for the whole answer.

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
// rendering and encoding one item at a time. An item that does not encode
// ends the answer early (the client sees a truncated body): the status is
// already sent by then.
func writeJSONList(w http.ResponseWriter, key string, n int, item func(i int) any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, streamBufSize)
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	enc.SetEscapeHTML(true) // as json.Marshal
	k, _ := json.Marshal(key)
	bw.WriteString("{")
	bw.Write(k)
	bw.WriteString(":[")
	for i := range n {
		one.Reset()
		if err := enc.Encode(item(i)); err != nil {
			return
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n"))) // Encode ends each value with a newline
	}
	bw.WriteString("]}")
	bw.Flush()
}
