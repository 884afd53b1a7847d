package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// PathError is a problem with the value at a JSON path, such as
// outbounds[2].settings.servers[0].port.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string {
	if e.Path == "" {
		return "config: " + e.Err.Error()
	}
	return "config: " + e.Path + ": " + e.Err.Error()
}

func (e *PathError) Unwrap() error { return e.Err }

func pathErrorf(path, format string, args ...any) *PathError {
	return &PathError{Path: path, Err: fmt.Errorf(format, args...)}
}

// Warning is something in a config that loads but does not do what its author may
// expect: a field proxychain ignores, or an insecure choice.
type Warning struct {
	Path    string // empty when the warning is about the whole config
	Message string
}

func (w Warning) String() string {
	if w.Path == "" {
		return w.Message
	}
	return w.Path + ": " + w.Message
}

// decoder fills typed structs from JSON, tracking the JSON path so every error names
// where it is, and collecting the paths of fields that have no struct field.
type decoder struct {
	unknown []string
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func (d *decoder) decode(raw json.RawMessage, v reflect.Value, path string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return pathErrorf(path, "missing value")
	}
	if isNull(raw) {
		// null means "not set", as an absent field does.
		v.SetZero()
		return nil
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			return &PathError{Path: path, Err: err}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(raw, v.Elem(), path)
	case reflect.Interface:
		// Settings: kept raw until the protocol names its type.
		v.Set(reflect.ValueOf(json.RawMessage(bytes.Clone(raw))))
		return nil
	case reflect.Struct:
		return d.decodeStruct(raw, v, path)
	case reflect.Slice:
		return d.decodeSlice(raw, v, path)
	case reflect.Map:
		return d.decodeMap(raw, v, path)
	case reflect.String:
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return pathErrorf(path, "want a string, got %s", describe(raw))
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		switch string(raw) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return pathErrorf(path, "want true or false, got %s", describe(raw))
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !isNumber(raw) {
			return pathErrorf(path, "want a number, got %s", describe(raw))
		}
		n, err := strconv.ParseInt(string(raw), 10, v.Type().Bits())
		if err != nil {
			return pathErrorf(path, "want a whole number that fits in %d bits, got %s", v.Type().Bits(), raw)
		}
		v.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !isNumber(raw) {
			return pathErrorf(path, "want a number, got %s", describe(raw))
		}
		n, err := strconv.ParseUint(string(raw), 10, v.Type().Bits())
		if err != nil {
			return pathErrorf(path, "want a non-negative whole number that fits in %d bits, got %s", v.Type().Bits(), raw)
		}
		v.SetUint(n)
		return nil
	case reflect.Float32, reflect.Float64:
		if !isNumber(raw) {
			return pathErrorf(path, "want a number, got %s", describe(raw))
		}
		f, err := strconv.ParseFloat(string(raw), v.Type().Bits())
		if err != nil {
			return pathErrorf(path, "want a number, got %s", raw)
		}
		v.SetFloat(f)
		return nil
	}
	return pathErrorf(path, "cannot decode into %s", v.Type())
}

func (d *decoder) decodeStruct(raw json.RawMessage, v reflect.Value, path string) error {
	if raw[0] != '{' {
		return pathErrorf(path, "want an object, got %s", describe(raw))
	}
	fields := jsonFields(v.Type())
	return eachMember(raw, func(key string, val json.RawMessage) error {
		i, ok := fields[key]
		if !ok {
			i, ok = fields[strings.ToLower(key)]
		}
		if !ok {
			d.unknown = append(d.unknown, join(path, key))
			return nil
		}
		return d.decode(val, v.Field(i), join(path, key))
	})
}

func (d *decoder) decodeSlice(raw json.RawMessage, v reflect.Value, path string) error {
	if raw[0] != '[' {
		return pathErrorf(path, "want an array, got %s", describe(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return &PathError{Path: path, Err: err}
	}
	s := reflect.MakeSlice(v.Type(), len(elems), len(elems))
	for i, e := range elems {
		if err := d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func (d *decoder) decodeMap(raw json.RawMessage, v reflect.Value, path string) error {
	if raw[0] != '{' {
		return pathErrorf(path, "want an object, got %s", describe(raw))
	}
	if v.Type().Key().Kind() != reflect.String {
		return pathErrorf(path, "cannot decode into %s", v.Type())
	}
	m := reflect.MakeMap(v.Type())
	err := eachMember(raw, func(key string, val json.RawMessage) error {
		elem := reflect.New(v.Type().Elem()).Elem()
		if err := d.decode(val, elem, join(path, key)); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
		return nil
	})
	if err != nil {
		return err
	}
	v.Set(m)
	return nil
}

// eachMember calls fn for each member of a JSON object, in document order.
func eachMember(raw json.RawMessage, fn func(key string, val json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return err
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	return nil
}

// jsonFields maps each field's JSON name, and its lower-case form for V2Ray's
// case-insensitive matching, to the field index.
func jsonFields(t reflect.Type) map[string]int {
	m := make(map[string]int, 2*t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
		if _, taken := m[strings.ToLower(name)]; !taken {
			m[strings.ToLower(name)] = i
		}
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(raw []byte) bool { return string(raw) == "null" }

func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// describe shows a JSON value in an error: scalars as written (shortened), containers by kind.
func describe(raw []byte) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case len(raw) > 40:
		return string(raw[:37]) + "..."
	}
	return string(raw)
}

// decodeInto decodes raw into *target, tracking paths from path.
func (d *decoder) decodeInto(raw json.RawMessage, target any, path string) error {
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return errors.New("config: decode target must be a non-nil pointer")
	}
	return d.decode(raw, v.Elem(), path)
}
