package marathon

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipbridge/vipbridge/fixtures/upstreamtest"
	"github.com/vipbridge/vipbridge/marathon/marathontest"
)

// hotDecoder pairs a decoder with eventScanner's fast path and its
// encoding/json reference.
type hotDecoder struct {
	eventType string
	decode    eventDecoder
	ref       eventDecoder
	scans     func(data []byte) bool // whether the fast path takes data
}

var hotDecoders = []hotDecoder{
	{"status_update_event", decodeStatusUpdate, refDecodeStatusUpdate,
		func(data []byte) bool { return scanStatusUpdate(data, &statusUpdateScan{}) }},
	{"instance_changed_event", decodeInstanceChanged, refDecodeInstanceChanged,
		func(data []byte) bool { return scanInstanceChanged(data, &instanceChangedJSON{}) }},
	{"instance_health_changed_event", decodeInstanceHealth, refDecodeInstanceHealth,
		func(data []byte) bool { var b bool; return scanInstanceHealth(data, &instanceHealthJSON{}, &b) }},
	{"health_status_changed_event", decodeHealthStatus, refDecodeHealthStatus,
		func(data []byte) bool { var b bool; return scanHealthStatus(data, &healthStatusJSON{}, &b) }},
}

// checkSameAsReference decodes data with every hot decoder and its
// reference: updates and errors (their text included) must be equal.
func checkSameAsReference(t *testing.T, data []byte) {
	t.Helper()
	for _, d := range hotDecoders {
		got, err := d.decode(data, fakeResolve)
		want, wantErr := d.ref(data, fakeResolve)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("%s(%q): error %v, reference %v", d.eventType, data, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s(%q) =\n%+v\nreference\n%+v", d.eventType, data, got, want)
		}
	}
}

type scanTest struct {
	name string
	data string
	fast string // the event type whose fast path must take data, if any
}

// scanTests are tricky inputs for the hot decoders; each runs through all
// of them against the reference and seeds FuzzHotEventDecoders.
var scanTests = []scanTest{
	{name: "status update, simulator shape", fast: "status_update_event",
		data: `{"appId":"/a","eventType":"status_update_event","host":"agent-1","ipAddresses":[{"ipAddress":"9.0.0.2","protocol":"IPv4"},{"ipAddress":"fd00::2","protocol":"IPv6"}],"message":"","ports":[31000,31001],"slaveId":"S0","taskId":"a.1","taskStatus":"TASK_RUNNING","timestamp":"2014-03-01T23:29:30.158Z","version":"2014-03-01T23:29:30.158Z"}`},
	{name: "whitespace everywhere", fast: "status_update_event",
		data: " \t\r\n{ \"taskId\" :\n\"t\" , \"appId\"\t:\"/a\",\"ports\" : [ 1 , 2 ] ,\"ipAddresses\" : [ { \"ipAddress\" : \"1.2.3.4\" } , { } ] , \"x\" : [ ] , \"y\" : { } } \r\n"},
	{name: "escaped quote in skipped message", fast: "status_update_event",
		data: `{"taskId":"t","appId":"/a","message":"exit \"1\" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00 \ud800"}`},
	{name: "nested skipped values", fast: "status_update_event",
		data: `{"taskId":"t","appId":"/a","x":{"a":[1,-2.5e+3,true,false,null,{"b":[[[]]]}],"c":"d"},"y":[0,-0,1E5,0.0]}`},
	{name: "deep nesting in a skipped field",
		data: `{"taskId":"t","appId":"/a","x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`},
	{name: "too deep nesting", data: `{"taskId":"t","appId":"/a","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`},
	{name: "escape in kept string", data: `{"taskId":"t\u0031","appId":"\/a","host":"h\"x"}`},
	{name: "surrogate pair in kept string", data: `{"taskId":"\ud83d\ude00","appId":"/a"}`},
	{name: "lone surrogate in kept string", data: `{"taskId":"\ud83d","appId":"/a","host":"\ude00x"}`},
	{name: "utf-8 in kept string", fast: "status_update_event", data: `{"taskId":"tâsk-日本","appId":"/a"}`},
	{name: "invalid utf-8 in kept string", data: "{\"taskId\":\"t\xff\xfe\",\"appId\":\"/a\"}"},
	{name: "invalid utf-8 in skipped string", fast: "status_update_event", data: "{\"taskId\":\"t\",\"appId\":\"/a\",\"m\":\"\xff\"}"},
	{name: "control character in string", data: "{\"taskId\":\"t\x01\",\"appId\":\"/a\"}"},
	{name: "control character in skipped string", data: "{\"taskId\":\"t\",\"appId\":\"/a\",\"m\":\"\t\"}"},
	{name: "bad escape", data: `{"taskId":"t","appId":"/a","m":"\x"}`},
	{name: "short unicode escape", data: `{"taskId":"t","appId":"/a","m":"\u12"}`},
	{name: "null strings leave fields empty", fast: "status_update_event", data: `{"taskId":"t","appId":"/a","host":null,"timestamp":null,"ports":null,"ipAddresses":null}`},
	{name: "null ip address", fast: "status_update_event", data: `{"taskId":"t","appId":"/a","ipAddresses":[{"ipAddress":null}]}`},
	{name: "null ip element", data: `{"taskId":"t","appId":"/a","ipAddresses":[null,{"ipAddress":"1.2.3.4"}]}`},
	{name: "null port element", data: `{"taskId":"t","appId":"/a","ports":[null,1]}`},
	{name: "ip element not an object", data: `{"taskId":"t","appId":"/a","ipAddresses":["1.2.3.4"]}`},
	{name: "ipAddresses an object", data: `{"taskId":"t","appId":"/a","ipAddresses":{"ipAddress":"1.2.3.4"}}`},
	{name: "port as float", data: `{"taskId":"t","appId":"/a","ports":[80.0]}`},
	{name: "port with exponent", data: `{"taskId":"t","appId":"/a","ports":[8e1]}`},
	{name: "negative and out-of-range ports", fast: "status_update_event", data: `{"taskId":"t","appId":"/a","ports":[-1,0,65535,65536,-0,999999999999999999]}`},
	{name: "port beyond int64", data: `{"taskId":"t","appId":"/a","ports":[9223372036854775808]}`},
	{name: "port at int64 max", data: `{"taskId":"t","appId":"/a","ports":[9223372036854775807,-9223372036854775808]}`},
	{name: "port with leading zero", data: `{"taskId":"t","appId":"/a","ports":[01]}`},
	{name: "port as string", data: `{"taskId":"t","appId":"/a","ports":["80"]}`},
	{name: "port minus only", data: `{"taskId":"t","appId":"/a","ports":[-]}`},
	{name: "empty ports", fast: "status_update_event", data: `{"taskId":"t","appId":"/a","ports":[],"ipAddresses":[]}`},
	{name: "trailing comma in ports", data: `{"taskId":"t","appId":"/a","ports":[1,]}`},
	{name: "duplicate key, last wins", data: `{"taskId":"t1","appId":"/a","taskId":"t2"}`},
	{name: "duplicate key then null", data: `{"taskId":"t1","appId":"/a","taskId":null}`},
	{name: "duplicate ipAddresses reuse elements", data: `{"taskId":"t","appId":"/a","ipAddresses":[{"ipAddress":"1.1.1.1"},{"ipAddress":"2.2.2.2"}],"ipAddresses":[{}]}`},
	{name: "duplicate ipAddress in element", data: `{"taskId":"t","appId":"/a","ipAddresses":[{"ipAddress":"1.1.1.1","ipAddress":"2.2.2.2"}]}`},
	{name: "case-insensitive keys", data: `{"TASKID":"t","appid":"/a","Ports":[1],"IPADDRESSES":[{"IPAddress":"1.2.3.4"}]}`},
	{name: "exact and folded key", data: `{"taskId":"t","appId":"/a","TaskId":"u"}`},
	{name: "kelvin sign and long s keys", data: "{\"taskId\":\"t\",\"appId\":\"/a\",\"ho\u017ft\":\"h\",\"\u212aey\":1,\"ta\u017fkId\":\"u\"}"},
	{name: "underscore key", data: `{"task_id":"t","app-id":"/a","taskId":"t","appId":"/a"}`},
	{name: "escaped key", data: `{"task\u0049d":"t","appId":"/a"}`},
	{name: "trailing garbage", data: `{"taskId":"t","appId":"/a"} x`},
	{name: "two objects", data: `{"taskId":"t","appId":"/a"}{}`},
	{name: "trailing comma in object", data: `{"taskId":"t","appId":"/a",}`},
	{name: "missing colon", data: `{"taskId" "t","appId":"/a"}`},
	{name: "unterminated", data: `{"taskId":"t","appId":"/a"`},
	{name: "unterminated string", data: `{"taskId":"t","appId":"/a`},
	{name: "wrong type for string field", data: `{"taskId":1,"appId":"/a"}`},
	{name: "object for string field", data: `{"taskId":{},"appId":"/a"}`},
	{name: "bad literal", data: `{"taskId":"t","appId":"/a","x":tru}`},
	{name: "literal with suffix", data: `{"taskId":"t","appId":"/a","x":truex}`},
	{name: "bad numbers", data: `{"taskId":"t","appId":"/a","x":1.}`},
	{name: "bad exponent", data: `{"taskId":"t","appId":"/a","x":1e+}`},
	{name: "plus number", data: `{"taskId":"t","appId":"/a","x":+1}`},
	{name: "huge skipped number", fast: "status_update_event", data: `{"taskId":"t","appId":"/a","x":1e400,"y":123456789012345678901234567890}`},
	{name: "top-level null", data: `null`},
	{name: "top-level array", data: `[]`},
	{name: "empty object", fast: "status_update_event", data: `{}`},
	{name: "empty", data: ``},
	{name: "whitespace only", data: " \n"},
	{name: "timestamp leap day", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2016-02-29T00:00:00.000Z"}`},
	{name: "timestamp no leap day", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"1900-02-29T00:00:00.000Z"}`},
	{name: "timestamp feb 30", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-02-30T12:00:00Z"}`},
	{name: "timestamp hour 24", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-09-30T24:00:00.000Z"}`},
	{name: "timestamp second 60", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-12-31T23:59:60.000Z"}`},
	{name: "timestamp minute 60", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-12-31T23:60:00Z"}`},
	{name: "timestamp nanoseconds", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-09-30T12:47:11.123456789Z"}`},
	{name: "timestamp lower z", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-09-30T12:47:11.286z"}`},
	{name: "timestamp offset", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-09-30T12:47:11.286+02:00"}`},
	{name: "timestamp month 13", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-13-01T00:00:00.000Z"}`},
	{name: "timestamp day 0", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-01-00T00:00:00Z"}`},
	{name: "timestamp year 0", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"0000-01-01T00:00:00.000Z"}`},
	{name: "timestamp sign in field", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-+9-30T12:47:11.286Z"}`},
	{name: "timestamp comma fraction", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-09-30T12:47:11,286Z"}`},
	{name: "timestamp space for T", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-09-30 12:47:11.286Z"}`},
	{name: "timestamp no seconds fraction digits", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-09-30T12:47:11.Z12"}`},
	{name: "timestamp dec 31", data: `{"taskId":"t","appId":"/a","taskStatus":"task_running","timestamp":"2015-12-31T23:59:59.999Z"}`},
	{name: "instance killed", fast: "instance_changed_event",
		data: `{"agentId":"S0","condition":"Killed","eventType":"instance_changed_event","host":"10.0.0.1","instanceId":"a.instance-1","runSpecId":"/a","runSpecVersion":"2014-03-01T23:29:30.158Z","timestamp":"2014-03-01T23:29:30.158Z"}`},
	{name: "instance with escaped condition", data: `{"condition":"Kil\u006ced","instanceId":"a.instance-1","runSpecId":"/a"}`},
	{name: "instance healthy", fast: "instance_health_changed_event",
		data: `{"eventType":"instance_health_changed_event","healthy":true,"instanceId":"a.instance-1","runSpecId":"/a","runSpecVersion":"v","timestamp":"2014-03-01T23:29:30.158Z"}`},
	{name: "instance health null", fast: "instance_health_changed_event", data: `{"healthy":null,"instanceId":"a.instance-1"}`},
	{name: "instance health false", fast: "instance_health_changed_event", data: `{"healthy":false,"instanceId":"a.instance-1"}`},
	{name: "health as string", data: `{"healthy":"true","instanceId":"a.instance-1","alive":"false","taskId":"t"}`},
	{name: "health as number", data: `{"healthy":1,"instanceId":"a.instance-1","alive":0}`},
	{name: "health duplicated", data: `{"healthy":true,"instanceId":"i","healthy":null,"alive":false,"alive":true}`},
	{name: "alive, old taskId", fast: "health_status_changed_event", data: `{"alive":false,"appId":"/a","taskId":"a.1","version":"v","timestamp":"2014-03-01T23:29:30.158Z"}`},
	{name: "alive true with instance id", fast: "health_status_changed_event", data: `{"alive":true,"appId":"/a","instanceId":"a.instance-1","taskId":"a.1"}`},
}

func TestHotDecodersMatchReference(t *testing.T) {
	for _, tt := range scanTests {
		t.Run(tt.name, func(t *testing.T) {
			checkSameAsReference(t, []byte(tt.data))
			for _, d := range hotDecoders {
				if d.eventType == tt.fast && !d.scans([]byte(tt.data)) {
					t.Errorf("%s fast path declined %q", d.eventType, tt.data)
				}
			}
		})
	}
	for _, tt := range append(append([]eventTest{}, eventTests...), eventCrashers...) {
		t.Run(tt.name, func(t *testing.T) { checkSameAsReference(t, []byte(tt.data)) })
	}
}

// hotSeeds returns the data of every status, instance and health event of
// the upstream fixtures (events.txt, the event-bus.md examples; read is
// given their path below the fixtures directory and returns nil when
// missing) and of the simulator, in both its shapes.
func hotSeeds(t testing.TB, read func(rel string) []byte) []sseFrame {
	var out []sseFrame
	hot := func(fr sseFrame) {
		for _, d := range hotDecoders {
			if fr.event == d.eventType || strings.Contains(fr.data, `"eventType":"`+d.eventType+`"`) ||
				strings.Contains(fr.data, `"eventType": "`+d.eventType+`"`) {
				out = append(out, fr)
				return
			}
		}
	}
	for _, fr := range splitSSE(read("mesosphere-marathon/docs/docs/rest-api/public/api/v2/examples/events.txt")) {
		hot(fr)
	}
	doc := read("mesosphere-marathon/docs/docs/event-bus.md")
	for _, b := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1) {
		hot(sseFrame{data: string(b[1])})
	}
	for _, legacy := range []bool{false, true} {
		for _, fr := range simulatorEvents(t, legacy) {
			hot(fr)
		}
	}
	return out
}

// simulatorEvents runs marathontest's small scenario, scales, fails a
// health check, kills a task and deletes an app, and returns the events of
// its stream up to the app_terminated_event.
func simulatorEvents(t testing.TB, legacy bool) []sseFrame {
	t.Helper()
	sc, err := marathontest.LoadScenario("small")
	if err != nil {
		t.Fatal(err)
	}
	var opts []marathontest.Option
	if legacy {
		opts = append(opts, marathontest.WithLegacyShape())
	}
	sim := marathontest.NewServer(sc, opts...)
	defer sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sim.URL()+"/v2/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open simulator stream: %v", err)
	}
	defer resp.Body.Close()
	var frames []sseFrame
	var buf bytes.Buffer
	started := false
	sc2 := bufio.NewScanner(resp.Body)
	sc2.Buffer(nil, 1<<20)
	for sc2.Scan() {
		line := sc2.Text()
		buf.WriteString(line + "\n")
		if line != "" {
			continue
		}
		fs := splitSSE(buf.Bytes())
		buf.Reset()
		if len(fs) == 0 {
			continue
		}
		frames = append(frames, fs...)
		if !started && fs[0].event == "event_stream_attached" {
			started = true
			if err := sim.ScaleApp("/web", 3); err != nil {
				t.Fatal(err)
			}
			for _, id := range sim.TaskIDs("/db") {
				if err := sim.SetHealth(id, false); err != nil {
					t.Fatal(err)
				}
				if err := sim.SetHealth(id, true); err != nil {
					t.Fatal(err)
				}
			}
			if err := sim.KillTask(sim.TaskIDs("/web")[0]); err != nil {
				t.Fatal(err)
			}
			if err := sim.DeleteApp("/db"); err != nil {
				t.Fatal(err)
			}
		}
		if fs[0].event == "app_terminated_event" {
			return frames
		}
	}
	t.Fatalf("simulator stream ended before app_terminated_event: %v", sc2.Err())
	return nil
}

// TestHotDecodersOnRealEvents checks the fixtures' and the simulator's
// events against the reference and that the fast path takes every one.
func TestHotDecodersOnRealEvents(t *testing.T) {
	seeds := hotSeeds(t, func(rel string) []byte { return upstreamtest.File(t, rel) })
	perType := map[string]int{}
	for _, fr := range seeds {
		checkSameAsReference(t, []byte(fr.data))
		typ := fr.event
		for _, d := range hotDecoders {
			if typ == "" && strings.Contains(fr.data, d.eventType) {
				typ = d.eventType
			}
			if d.eventType == typ {
				perType[typ]++
				if !d.scans([]byte(fr.data)) {
					t.Errorf("%s fast path declined %s", typ, fr.data)
				}
			}
		}
	}
	for _, d := range hotDecoders {
		if perType[d.eventType] == 0 {
			t.Errorf("no %s among the seeds (%v)", d.eventType, perType)
		}
	}
}

func FuzzHotEventDecoders(f *testing.F) {
	for _, tt := range scanTests {
		f.Add([]byte(tt.data))
	}
	for _, tt := range append(append([]eventTest{}, eventTests...), eventCrashers...) {
		f.Add([]byte(tt.data))
	}
	// Like addUpstreamSeeds: seeds are optional, a bare checkout fuzzes too.
	read := func(rel string) []byte {
		dir := os.Getenv(upstreamtest.Env)
		if dir == "" {
			dir = filepath.Join("..", "..", "shared", "fixtures", "upstream")
		}
		data, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		return data
	}
	for _, fr := range hotSeeds(f, read) {
		f.Add([]byte(fr.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkSameAsReference(t, data) })
}

// benchStatus is a status_update_event as the simulator writes it.
var benchStatus = []byte(`{"appId":"/shop/web","eventType":"status_update_event","host":"agent-3.example.com","ipAddresses":[{"ipAddress":"10.1.2.3","protocol":"IPv4"}],"message":"","ports":[31005,31006],"slaveId":"20150707-153709-218108076-5050-25588-S6","taskId":"shop_web.instance-5dd78972-6771-11e5-94e1-be5b2935a987._app.1","taskStatus":"TASK_RUNNING","timestamp":"2015-09-30T12:47:11.286Z","version":"2015-09-11T22:11:03.156Z"}`)

func BenchmarkDecodeStatusUpdate(b *testing.B) {
	for _, bc := range []struct {
		name   string
		decode eventDecoder
	}{{"scan", decodeStatusUpdate}, {"encoding-json", refDecodeStatusUpdate}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchStatus)))
			for b.Loop() {
				if _, err := bc.decode(benchStatus, fakeResolve); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
