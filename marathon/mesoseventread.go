package marathon

// Reading one operator event from its record as a stream. SUBSCRIBED holds
// the master's whole state in one record (hundreds of MB at 100,000 tasks):
// it is walked token by token and its tasks decoded one at a time into the
// compact form the mirror keeps, so that neither the record nor the
// decoded v1 tasks are ever whole in memory; the followed Marathon's tasks,
// which its own source serves, are not kept at all. The other events are
// small and decoded whole.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// mesosSubscribedEvent is a SUBSCRIBED event as read: its state's agents and
// frameworks, and its live tasks in compact form.
type mesosSubscribedEvent struct {
	HeartbeatIntervalSeconds float64
	Frameworks               []mesosV1FrameworkJSON
	Agents                   []mesosV1AgentJSON
	// Tasks are the live tasks of get_tasks (tasks, launched_tasks)
	// but those of framework Skipped.
	Tasks map[taskKey]*mesosTask
	// Skipped is the framework whose tasks were left out ("" for none).
	Skipped string
	skip    []byte // Skipped's bytes
}

// readMesosEvent reads one event from r, which holds one record. The tasks
// of SUBSCRIBED of framework skip ("" for none) are left out. An event of
// a type this client does not read decodes with only Type set; one whose
// payload is missing or lacks the IDs it is keyed by is an error.
func readMesosEvent(r io.Reader, skip string) (mesosEventJSON, error) {
	var ev mesosEventJSON
	dec := json.NewDecoder(r)
	small := map[string]any{
		"type": &ev.Type, "task_added": &ev.TaskAdded, "task_updated": &ev.TaskUpdated,
		"agent_added": &ev.AgentAdded, "agent_removed": &ev.AgentRemoved, "framework_added": &ev.FrameworkAdded,
		"framework_updated": &ev.FrameworkUpdated, "framework_removed": &ev.FrameworkRemoved,
	}
	err := walkObject(dec, func(key string) error {
		if key == "subscribed" {
			ev.Subscribed = &mesosSubscribedEvent{Tasks: map[taskKey]*mesosTask{}, Skipped: skip, skip: []byte(skip)}
			return ev.Subscribed.read(dec)
		}
		if p, ok := small[key]; ok {
			return dec.Decode(p)
		}
		return dec.Decode(&skippedJSON{})
	})
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			err = nil
		} else if err == nil {
			err = errors.New("data after the event")
		}
	}
	if err != nil {
		return mesosEventJSON{}, fmt.Errorf("decode mesos event: %w", err)
	}
	if err := ev.check(); err != nil {
		return mesosEventJSON{}, fmt.Errorf("mesos event %s: %w", ev.Type, err)
	}
	return ev, nil
}

// read walks the subscribed object.
func (s *mesosSubscribedEvent) read(dec *json.Decoder) error {
	in := interner{}
	return walkObject(dec, func(key string) error {
		switch key {
		case "heartbeat_interval_seconds":
			return dec.Decode(&s.HeartbeatIntervalSeconds)
		case "get_state":
			return walkObject(dec, func(key string) error { return s.readState(dec, key, in) })
		}
		return dec.Decode(&skippedJSON{})
	})
}

// readState reads member key of get_state (apache/mesos master.proto
// Response.GetState): its tasks one by one; its frameworks and agents
// whole (a few thousand at most).
func (s *mesosSubscribedEvent) readState(dec *json.Decoder, key string, in interner) error {
	switch key {
	case "get_tasks":
		return walkObject(dec, func(key string) error {
			if key != "tasks" && key != "launched_tasks" {
				return dec.Decode(&skippedJSON{}) // completed, orphan, unreachable
			}
			var raw json.RawMessage // reused: each task is copied in
			return walkArray(dec, func() error { return s.readTask(dec, in, &raw) })
		})
	case "get_frameworks":
		var f struct {
			Frameworks []mesosV1FrameworkJSON `json:"frameworks"`
		}
		err := dec.Decode(&f)
		s.Frameworks = append(s.Frameworks, f.Frameworks...)
		return err
	case "get_agents":
		var a struct {
			Agents []mesosV1AgentJSON `json:"agents"`
		}
		err := dec.Decode(&a)
		s.Agents = append(s.Agents, a.Agents...)
		return err
	}
	return dec.Decode(&skippedJSON{}) // get_executors
}

// readTask decodes one task and keeps it unless it ended, is the skipped
// framework's or has no ID. A task that names the skipped framework's ID
// anywhere has its framework_id read first, and is not decoded when it is
// the skipped framework's: the followed Marathon's tasks (all of them, on
// a cluster that runs little else) cost one scan each.
func (s *mesosSubscribedEvent) readTask(dec *json.Decoder, in interner, raw *json.RawMessage) error {
	if err := dec.Decode(raw); err != nil {
		return err
	}
	if len(s.skip) > 0 && bytes.Contains(*raw, s.skip) {
		var f struct {
			FrameworkID frameworkIDJSON `json:"framework_id"`
		}
		if err := json.Unmarshal(*raw, &f); err != nil {
			return err
		}
		if string(f.FrameworkID) == s.Skipped {
			return nil
		}
	}
	var t mesosTaskJSON
	if err := json.Unmarshal(*raw, &t); err != nil {
		return err
	}
	fid := t.frameworkID()
	if isTerminal(t.State) || t.taskID() == "" || s.Skipped != "" && fid == s.Skipped {
		return nil
	}
	s.Tasks[taskKey{in.get(fid), t.taskID()}] = t.compact(in)
	return nil
}

// walkObject reads a JSON object (or null) from dec, calling member for
// each key with dec before the key's value, which member must consume.
func walkObject(dec *json.Decoder, member func(key string) error) error {
	if null, err := expectDelim(dec, '{'); err != nil || null {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key %v", tok)
		}
		if err := member(key); err != nil {
			return err
		}
	}
	_, err := expectDelim(dec, '}')
	return err
}

// walkArray reads a JSON array (or null) from dec, calling elem before
// each element, which elem must consume.
func walkArray(dec *json.Decoder, elem func() error) error {
	if null, err := expectDelim(dec, '['); err != nil || null {
		return err
	}
	for dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err := expectDelim(dec, ']')
	return err
}

// expectDelim reads want, or a null where an opening delimiter is wanted.
func expectDelim(dec *json.Decoder, want json.Delim) (null bool, err error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return false, err
	case tok == nil && (want == '{' || want == '['):
		return true, nil
	case tok != want:
		return false, fmt.Errorf("want %v, got %v", want, tok)
	}
	return false, nil
}

// skippedJSON consumes a JSON value of any kind without keeping it.
type skippedJSON struct{}

// UnmarshalJSON implements json.Unmarshaler.
func (*skippedJSON) UnmarshalJSON([]byte) error { return nil }
