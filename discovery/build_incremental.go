package discovery

// The incremental build (incBuilder): given the apps that changed, it
// recomputes only the VIPs they declare, and its result equals Build's over
// the same apps.

import (
	"slices"
	"time"
)

// incBuilder builds Tables incrementally: it keeps each app's contribution
// (its VIPs with their backends, label errors and named labels) and, given
// the apps that changed, recomputes only the VIPs those apps declare (or
// declared). Its result is equal to Build over the same apps (the
// differential test holds it to that; Build stays the reference):
//
//   - VIPs come out sorted by Key; unchanged VIP values, and their Backends,
//     Labels and Apps slices, are reused from the previous result, so a
//     published Table is never written to (copy-on-write);
//   - allocation follows Build: IP VIP addresses are reserved before names
//     are assigned, new names are assigned in key order. A VIP that is not
//     recomputed does not call Assign; touch refreshes every published
//     name's LastSeen instead, at most touchEvery apart. When a new
//     reservation lands in a VIP range, addresses expire, or an assignment
//     fails, every VIP is recomputed in key order, exactly as Build does;
//   - label errors and name collisions are kept per app and per name and
//     re-sorted only when some changed.
//
// The first label of a VIP (to which a failed assignment is attributed) is
// that of the declaring app with the smallest ID, which is Build's when its
// apps are sorted by ID.
//
// An incBuilder is not safe for concurrent use; the reconciler owns it.
type incBuilder struct {
	frameworks map[string]string
	apps       map[appRef]*appContrib
	byKey      map[VIPKey]map[appRef]struct{}
	// spell counts, per normalised name, the labels of each spelling;
	// nameApps lists the apps with a label of the name.
	spell    map[string]map[string]int
	nameApps map[string]map[appRef]struct{}
	// errApps are the apps with label errors of their own; collErrs and
	// allocErrs the name collisions per name and failed assignments per VIP.
	errApps   map[appRef]struct{}
	collErrs  map[string][]LabelError
	allocErrs map[VIPKey][]LabelError
	reserved  map[[16]byte]struct{}

	vips      VIPList
	errs      []LabelError
	lastTouch time.Time
}

// touchEvery bounds how long a published name's LastSeen in the allocator
// may lag behind (Build refreshes it at every build; grace is hours).
const touchEvery = time.Minute

// appRef identifies an app across sources.
type appRef struct{ source, id string }

// appContrib is what one app adds: Build's accumulators for the app alone,
// with backends merged and labels sorted (shared read-only with Tables).
type appContrib struct {
	vips  map[VIPKey]*vipAcc
	errs  []LabelError
	named []namedLabel
}

// namedLabel is one label of a named VIP: its normalised name, its
// spelling, and where it is (for collision errors).
type namedLabel struct {
	name    string
	label   LabelError
	written string
}

// incResult is one incremental build.
type incResult struct {
	// table has VIPs and Errors; its names index is left empty.
	table *Table
	// base is the VIPs of the previous result: changed lists the names
	// whose VIPs differ from it (added, removed or changed).
	base    VIPList
	changed map[string]struct{}
	// same is true when VIPs and errors equal the previous result's.
	same bool
}

func newIncBuilder() *incBuilder {
	return &incBuilder{
		frameworks: map[string]string{},
		apps:       map[appRef]*appContrib{},
		byKey:      map[VIPKey]map[appRef]struct{}{},
		spell:      map[string]map[string]int{},
		nameApps:   map[string]map[appRef]struct{}{},
		errApps:    map[appRef]struct{}{},
		collErrs:   map[string][]LabelError{},
		allocErrs:  map[VIPKey][]LabelError{},
		reserved:   map[[16]byte]struct{}{},
	}
}

// build applies changes (an app, or nil for an app gone) and returns the
// new result. full recomputes every VIP (after addresses expired).
func (b *incBuilder) build(changes map[appRef]*App, alloc *Allocator, now time.Time, full bool) incResult {
	dirtyKeys := map[VIPKey]struct{}{}
	dirtyNames := map[string]struct{}{}
	errsDirty := false
	for ref, app := range changes {
		if old := b.apps[ref]; old != nil {
			errsDirty = b.remove(ref, old, dirtyKeys, dirtyNames) || errsDirty
		}
		if app != nil {
			errsDirty = b.add(ref, app, dirtyKeys, dirtyNames) || errsDirty
		}
	}
	for name := range dirtyNames {
		errsDirty = b.collisions(name) || errsDirty
	}
	if alloc != nil && b.reserve(dirtyKeys, alloc) {
		full = true // a name may hold a reserved address: Build would move it now
	}
	full = full || len(b.allocErrs) > 0
	res := incResult{base: b.vips, changed: map[string]struct{}{}}
	vips, failed := b.merge(dirtyKeys, alloc, now, full, res.changed)
	if failed && !full {
		vips, _ = b.merge(dirtyKeys, alloc, now, true, res.changed)
	}
	res.same = vips.same(b.vips)
	if failed || full {
		errsDirty = true
	}
	if alloc != nil && (full || now.Sub(b.lastTouch) >= touchEvery) {
		b.touch(vips, alloc, now)
	}
	if errsDirty {
		errs := b.collectErrors()
		if !slices.Equal(errs, b.errs) {
			b.errs = errs
		} else {
			errsDirty = false
		}
	}
	res.same = res.same && !errsDirty
	b.vips = vips
	res.table = &Table{VIPs: vips, Errors: b.errs, Built: now}
	return res
}

// reserve reserves the addresses of the IP VIPs among keys not reserved
// yet, and reports whether one lies in a range names are assigned from.
func (b *incBuilder) reserve(keys map[VIPKey]struct{}, alloc *Allocator) (inRange bool) {
	for k := range keys {
		if !k.IP.IsValid() || len(b.byKey[k]) == 0 {
			continue
		}
		ip := k.IP.As16()
		if _, ok := b.reserved[ip]; ok {
			continue
		}
		b.reserved[ip] = struct{}{}
		alloc.Reserve(k.IP)
		inRange = inRange || alloc.v4.prefix.Contains(k.IP) || alloc.v6.prefix.Contains(k.IP)
	}
	return inRange
}

// add computes app's contribution and indexes it.
func (b *incBuilder) add(ref appRef, app *App, dirtyKeys map[VIPKey]struct{}, dirtyNames map[string]struct{}) (errsDirty bool) {
	bd := &builder{vips: map[VIPKey]*vipAcc{}, names: map[string]string{}, frameworks: b.frameworks, trackNames: true}
	bd.addApp(app)
	c := &appContrib{vips: bd.vips, errs: bd.errs, named: bd.named}
	for k, acc := range c.vips {
		acc.backends = mergeBackends(acc.backends)
		acc.labels = sortedSet(acc.labels)
		acc.apps = sortedSet(acc.apps)
		refs := b.byKey[k]
		if refs == nil {
			refs = map[appRef]struct{}{}
			b.byKey[k] = refs
		}
		refs[ref] = struct{}{}
		dirtyKeys[k] = struct{}{}
	}
	for _, nl := range c.named {
		s := b.spell[nl.name]
		if s == nil {
			s = map[string]int{}
			b.spell[nl.name] = s
		}
		s[nl.written]++
		apps := b.nameApps[nl.name]
		if apps == nil {
			apps = map[appRef]struct{}{}
			b.nameApps[nl.name] = apps
		}
		apps[ref] = struct{}{}
		dirtyNames[nl.name] = struct{}{}
	}
	b.apps[ref] = c
	if len(c.errs) > 0 {
		b.errApps[ref] = struct{}{}
		return true
	}
	return false
}

// remove drops c, the contribution of ref, from the indexes.
func (b *incBuilder) remove(ref appRef, c *appContrib, dirtyKeys map[VIPKey]struct{}, dirtyNames map[string]struct{}) (errsDirty bool) {
	for k := range c.vips {
		if refs := b.byKey[k]; refs != nil {
			delete(refs, ref)
			if len(refs) == 0 {
				delete(b.byKey, k)
			}
		}
		dirtyKeys[k] = struct{}{}
	}
	for _, nl := range c.named {
		if s := b.spell[nl.name]; s != nil {
			if s[nl.written]--; s[nl.written] <= 0 {
				delete(s, nl.written)
			}
			if len(s) == 0 {
				delete(b.spell, nl.name)
			}
		}
		if apps := b.nameApps[nl.name]; apps != nil {
			delete(apps, ref)
			if len(apps) == 0 {
				delete(b.nameApps, nl.name)
			}
		}
		dirtyNames[nl.name] = struct{}{}
	}
	delete(b.apps, ref)
	_, hadErrs := b.errApps[ref]
	delete(b.errApps, ref)
	return hadErrs
}

// collisions recomputes the collision errors of name and reports whether
// there are or were any.
func (b *incBuilder) collisions(name string) bool {
	old := b.collErrs[name]
	spellings := b.spell[name]
	if len(spellings) < 2 {
		delete(b.collErrs, name)
		return len(old) > 0
	}
	least := ""
	for s := range spellings {
		if least == "" || s < least {
			least = s
		}
	}
	var errs []LabelError
	for ref := range b.nameApps[name] {
		for _, nl := range b.apps[ref].named {
			if nl.name == name && nl.written != least {
				e := nl.label
				e.Reason = collisionReason(least, nl.written, name)
				errs = append(errs, e)
			}
		}
	}
	b.collErrs[name] = errs
	return true
}

// merge returns the VIPs with those of keys (every key if full)
// recomputed, noting the names of VIPs that changed in changed, and whether
// some assignment failed. Chunks of b.vips without recomputed VIPs are
// shared (VIPList.edit); when no VIP changed it returns b.vips itself.
func (b *incBuilder) merge(keys map[VIPKey]struct{}, alloc *Allocator, now time.Time, full bool, changed map[string]struct{}) (VIPList, bool) {
	var sorted []VIPKey
	if full {
		sorted = make([]VIPKey, 0, len(b.byKey)+b.vips.Len())
		for k := range b.byKey {
			sorted = append(sorted, k)
		}
		for v := range b.vips.All() {
			if _, ok := b.byKey[v.Key]; !ok {
				sorted = append(sorted, v.Key)
			}
		}
		clear(b.allocErrs)
	} else {
		sorted = make([]VIPKey, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
			delete(b.allocErrs, k)
		}
	}
	slices.SortFunc(sorted, compareKey)
	failed := map[allocKey]bool{}
	anyFailed := false
	out, _ := b.vips.edit(sorted, func(k VIPKey, _ *VIP) (VIP, bool) {
		v, ok, errs := b.vip(k, alloc, now, failed)
		if len(errs) > 0 {
			b.allocErrs[k] = errs
			anyFailed = true
		}
		return v, ok
	}, func(k VIPKey) { changed[k.Name] = struct{}{} })
	delete(changed, "") // IP VIPs have no names
	return out, anyFailed
}

// vip computes the VIP of k from its declaring apps, as Build's finish does.
func (b *incBuilder) vip(k VIPKey, alloc *Allocator, now time.Time, failed map[allocKey]bool) (VIP, bool, []LabelError) {
	v, first := b.declared(k)
	if len(v.Backends) == 0 {
		return VIP{}, false, nil
	}
	if k.IP.IsValid() {
		if k.IP.Is4() {
			v.Addr4 = k.IP
		} else {
			v.Addr6 = k.IP
		}
		return v, true, nil
	}
	if alloc == nil {
		return v, true, nil
	}
	var errs []LabelError
	for _, v6 := range [...]bool{false, true} {
		if !slices.ContainsFunc(v.Backends, func(be Backend) bool { return be.Addr.Addr().Is4() != v6 }) {
			continue
		}
		ip, err := alloc.Assign(k.Name, v6, now)
		if err != nil && !failed[allocKey{k.Name, v6}] {
			failed[allocKey{k.Name, v6}] = true
			e := first
			e.Reason = err.Error()
			errs = append(errs, e)
		}
		if v6 {
			v.Addr6 = ip
		} else {
			v.Addr4 = ip
		}
	}
	return v, true, errs
}

// declared merges what k's declaring apps contribute: its backends, labels
// and apps, and the first label (of the app with the smallest ID).
func (b *incBuilder) declared(k VIPKey) (VIP, LabelError) {
	v := VIP{Key: k}
	var first LabelError
	refs := b.byKey[k]
	if len(refs) == 1 {
		for ref := range refs {
			acc := b.apps[ref].vips[k]
			v.Backends, v.Labels, v.Apps, first = acc.backends, acc.labels, acc.apps, acc.first
		}
		return v, first
	}
	var bes []Backend
	var labels, apps []string
	n := 0
	for ref := range refs {
		acc := b.apps[ref].vips[k]
		bes = append(bes, acc.backends...)
		labels = append(labels, acc.labels...)
		apps = append(apps, acc.apps...)
		if n == 0 || acc.first.AppID < first.AppID {
			first = acc.first
		}
		n++
	}
	v.Backends, v.Labels, v.Apps = mergeBackends(bes), sortedSet(labels), sortedSet(apps)
	return v, first
}

// touch refreshes the LastSeen of every name of vips, as a Build would.
func (b *incBuilder) touch(vips VIPList, alloc *Allocator, now time.Time) {
	b.lastTouch = now
	for v := range vips.All() {
		if v.Key.IP.IsValid() {
			continue
		}
		if v.Addr4.IsValid() {
			_, _ = alloc.Assign(v.Key.Name, false, now)
		}
		if v.Addr6.IsValid() {
			_, _ = alloc.Assign(v.Key.Name, true, now)
		}
	}
}

// collectErrors returns every label error, sorted and without duplicates.
func (b *incBuilder) collectErrors() []LabelError {
	var errs []LabelError
	for ref := range b.errApps {
		errs = append(errs, b.apps[ref].errs...)
	}
	for _, es := range b.collErrs {
		errs = append(errs, es...)
	}
	for _, es := range b.allocErrs {
		errs = append(errs, es...)
	}
	slices.SortFunc(errs, compareLabelError)
	return slices.Clip(slices.Compact(errs))
}
