package discovery_test

// Examples of the task zones' names.

import (
	"fmt"
	"net/netip"

	"github.com/vipbridge/vipbridge/discovery"
)

func ExampleMarathonTaskName() {
	fmt.Println(discovery.MarathonTaskName("/mygroup/myapp"))
	// Output: myapp.mygroup
}

func ExampleNamesConfig_AppRecords() {
	app := &discovery.App{ID: "/web", Framework: "marathon",
		Ports: []discovery.Port{{Kind: discovery.PortHost, Protocols: []discovery.Protocol{discovery.TCP}}},
		Tasks: []discovery.Task{{ID: "web.b8db9f73-562f-11e4-a088-c20493233aa5", AgentID: "20160107-001256-134875658-5050-27524-S0",
			AgentIP: netip.MustParseAddr("10.0.0.5"), State: discovery.TaskRunning, HostPorts: []uint16{31000}}}}
	for _, tr := range (discovery.NamesConfig{}).AppRecords(app, nil) {
		for _, r := range tr.Records {
			if r.Type == discovery.TypeSRV {
				fmt.Printf("%s %s SRV %s:%d\n", r.Zone, r.Name, r.Target, r.Port)
			} else {
				fmt.Printf("%s %s %s %s\n", r.Zone, r.Name, r.Type, r.Addr)
			}
		}
	}
	// Output:
	// mesos web.marathon A 10.0.0.5
	// mesos web-ew9uj-s0.marathon A 10.0.0.5
	// mesos web.marathon.slave A 10.0.0.5
	// mesos web-ew9uj-s0.marathon.slave A 10.0.0.5
	// mesos _web._tcp.marathon.slave SRV web-ew9uj-s0.marathon.slave:31000
	// mesos _web._udp.marathon.slave SRV web-ew9uj-s0.marathon.slave:31000
	// mesos _web._tcp.marathon SRV web-ew9uj-s0.marathon:31000
	// dcos web.marathon.agentip A 10.0.0.5
	// dcos web.marathon.autoip A 10.0.0.5
}
