package httpapi

// GET /v1/config: the daemon's effective configuration (Config.Settings),
// as mesos-dns shows its Config struct, with every secret removed.

import (
	"encoding"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// redacted replaces a secret's value.
const redacted = "<redacted>"

// v1Config serves GET /v1/config: Config.Settings rendered by showSettings.
func (a *api) v1Config(w http.ResponseWriter, _ *http.Request) {
	doc := showSettings(reflect.ValueOf(a.settings), false)
	if _, ok := doc.(map[string]any); !ok {
		doc = map[string]any{}
	}
	writeJSON(w, http.StatusOK, doc)
}

// showSettings renders v for JSON with secrets removed: a struct as an
// object of its exported fields by Go name, durations as "5s", text
// marshalers (netip.Prefix, slog.Level) as their text, strings with any
// URL user information removed (url.URL.Redacted keeps the user name,
// this drops it), and the whole value of a field whose name says it holds
// a secret (secretName) replaced by "<redacted>" when set. Functions,
// channels, interfaces holding them and unexported fields are left out.
// secret is whether v is a secret field's value.
func showSettings(v reflect.Value, secret bool) any {
	if !v.IsValid() {
		return nil
	}
	if secret && !v.IsZero() {
		return redacted
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return time.Duration(v.Int()).String()
	}
	if m, ok := textMarshaler(v); ok {
		text, err := m.MarshalText()
		if err != nil {
			return nil
		}
		return withoutUserInfo(string(text))
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return showSettings(v.Elem(), false)
	case reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() && shown(f.Type) {
				out[f.Name] = showSettings(v.Field(i), secretName(f.Name))
			}
		}
		return out
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || !shown(v.Type().Elem()) {
			return nil
		}
		out := map[string]any{}
		for it := v.MapRange(); it.Next(); {
			k := it.Key().String()
			out[withoutUserInfo(k)] = showSettings(it.Value(), secretName(k))
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, 0, v.Len())
		for i := range v.Len() {
			out = append(out, showSettings(v.Index(i), false))
		}
		return out
	case reflect.String:
		return withoutUserInfo(v.String())
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return nil
}

// shown reports whether values of type t can be shown at all.
func shown(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return shown(t.Elem())
	}
	return true
}

// textMarshaler returns v's encoding.TextMarshaler, if it has one.
func textMarshaler(v reflect.Value) (encoding.TextMarshaler, bool) {
	if !v.CanInterface() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return nil, false
	}
	m, ok := v.Interface().(encoding.TextMarshaler)
	return m, ok
}

// secretWords mark a setting's name as holding a secret; a name ending in
// one of pathSuffixes names where a secret is kept (--marathon-token-file),
// which is shown: the file's contents never are.
var (
	secretWords  = []string{"password", "passwd", "secret", "credential", "token", "user", "auth", "key"}
	pathSuffixes = []string{"file", "dir", "path"}
)

// secretName reports whether a setting called name holds a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range pathSuffixes {
		if strings.HasSuffix(n, s) {
			return false
		}
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// withoutUserInfo returns s with the user information of a URL in it
// removed ("http://u:p@host/" → "http://host/"). A string that is not a
// URL but has an '@' before its first '/' may be "user:password@host"
// and is replaced whole.
func withoutUserInfo(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		if u.User == nil {
			return s
		}
		u.User = nil
		return u.String()
	}
	if i := strings.IndexByte(s, '@'); i >= 0 && !strings.Contains(s[:i], "/") {
		return redacted
	}
	return s
}
