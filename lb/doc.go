// Package lb makes the kernel's load balancer match the desired VIP table
// published by discovery. The dataplane is chosen by name: "none" (records
// and DNS only) exists today; "ipvs" and "nftables" implement the same
// discovery.Dataplane interface.
//
// discovery calls Apply with each new table and enforces the order of
// effects (dataplane before DNS on add, DNS before dataplane on remove), so a
// dataplane only has to converge the kernel to the table it is given.
package lb
