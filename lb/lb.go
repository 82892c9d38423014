package lb

import (
	"errors"
	"fmt"

	"github.com/vipbridge/vipbridge/discovery"
)

// kinds lists the dataplanes New knows, for error messages.
const kinds = "none, ipvs"

// New returns the dataplane named kind. For "ipvs" the optional config
// (at most one; zero values take defaults) configures it and the result is
// an *IPVS, whose Run must run beside the reconciler and whose Close
// releases it.
func New(kind string, ipvs ...IPVSConfig) (discovery.Dataplane, error) {
	switch kind {
	case "none", "":
		return &None{}, nil
	case "ipvs":
		if len(ipvs) > 1 {
			return nil, errors.New("dataplane ipvs: more than one IPVSConfig")
		}
		var cfg IPVSConfig
		if len(ipvs) == 1 {
			cfg = ipvs[0]
		}
		x, err := NewIPVS(cfg)
		if err != nil {
			return nil, err
		}
		return x, nil
	case "nftables":
		return nil, fmt.Errorf("dataplane %q is not implemented yet; use --lb ipvs or --lb none", kind)
	}
	return nil, fmt.Errorf("unknown dataplane %q (want one of: %s)", kind, kinds)
}
