package discovery_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vipbridge/vipbridge/discovery"
)

func ExampleParseVIP() {
	for _, value := range []string{"/mygroup/myapp:80", "fd01:c::5:1234", "tcp://1.2.3.4:5000", "invalid-port::1234"} {
		v, err := discovery.ParseVIP(value)
		if err != nil {
			fmt.Printf("%s: error: %v\n", value, err)
			continue
		}
		fmt.Printf("%s: name=%q ip=%v port=%d protocol=%d\n", value, v.Name, v.IP, v.Port, v.Protocol)
	}
	// Output:
	// /mygroup/myapp:80: name="/mygroup/myapp" ip=invalid IP port=80 protocol=0
	// fd01:c::5:1234: name="" ip=fd01:c::5 port=1234 protocol=0
	// tcp://1.2.3.4:5000: name="" ip=1.2.3.4 port=5000 protocol=6
	// invalid-port::1234: error: colon in name
}

func ExampleNormaliseName() {
	fmt.Println(discovery.NormaliseName("/mygroup/myapp"))
	fmt.Println(discovery.NormaliseName("/api.hello-world"))
	fmt.Println(discovery.NormaliseName("-4abc123"))
	// Output:
	// mygroupmyapp
	// api.hello-world
	// 4abc123
}

func ExampleBuild() {
	apps := []discovery.App{{
		ID:           "/web",
		Framework:    "marathon",
		HealthChecks: true,
		Ports: []discovery.Port{{
			Kind:      discovery.PortHost,
			Protocols: []discovery.Protocol{discovery.TCP},
			Labels:    []discovery.Label{{Key: "VIP_0", Value: "/web:80"}, {Key: "VIP_1", Value: "/web:0"}},
		}},
		Tasks: []discovery.Task{
			{ID: "web.1", AgentIP: netip.MustParseAddr("10.0.0.1"), HostPorts: []uint16{31000},
				State: discovery.TaskRunning, Health: discovery.HealthHealthy},
			{ID: "web.2", AgentIP: netip.MustParseAddr("10.0.0.2"), HostPorts: []uint16{31000},
				State: discovery.TaskRunning, Health: discovery.HealthUnhealthy},
		},
	}}
	alloc := discovery.NewAllocator(discovery.AllocConfig{}, nil)
	t := discovery.Build(apps, alloc, time.Now())
	fmt.Print(t)
	// Output:
	// tcp web.marathon:80 11.169.34.66 -> 10.0.0.1:31000 w=1 task=web.1, 10.0.0.2:31000 w=0 task=web.2
	// error /web VIP_1=/web:0: port 0 out of range 1-65535
}
