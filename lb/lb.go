package lb

import (
	"fmt"

	"github.com/vipbridge/vipbridge/discovery"
)

// kinds lists the dataplanes New knows, for error messages.
const kinds = "none"

// New returns the dataplane named kind.
func New(kind string) (discovery.Dataplane, error) {
	switch kind {
	case "none", "":
		return &None{}, nil
	case "ipvs", "nftables":
		return nil, fmt.Errorf("dataplane %q is not implemented yet; use --lb none", kind)
	}
	return nil, fmt.Errorf("unknown dataplane %q (want one of: %s)", kind, kinds)
}
