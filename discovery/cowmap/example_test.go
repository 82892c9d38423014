package cowmap_test

import (
	"fmt"

	"github.com/vipbridge/vipbridge/discovery/cowmap"
)

// A new version is made by editing an old one, which stays as it was; Diff
// tells what changed between the two.
func ExampleDiff() {
	e := cowmap.Map[string]{}.Edit()
	e.Set("web.marathon", "11.0.0.1")
	e.Set("db.marathon", "11.0.0.2")
	v1 := e.Map()

	e = v1.Edit()
	e.Set("web.marathon", "11.0.0.3")
	e.Delete("db.marathon")
	v2 := e.Map()

	old, _ := v1.Get("web.marathon")
	cur, _ := v2.Get("web.marathon")
	fmt.Println(v1.Len(), old, v2.Len(), cur)
	cowmap.Diff(v1, v2, func(x, y string) bool { return x == y }, func(k, x string, inA bool, y string, inB bool) {
		fmt.Printf("%s: %q (%v) -> %q (%v)\n", k, x, inA, y, inB)
	})
	// Unordered output:
	// 2 11.0.0.1 1 11.0.0.3
	// web.marathon: "11.0.0.1" (true) -> "11.0.0.3" (true)
	// db.marathon: "11.0.0.2" (true) -> "" (false)
}
