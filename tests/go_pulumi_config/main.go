// Reads a Pulumi stack file from stdin the way the current Pulumi CLI does and prints, as JSON,
// the string each config value reaches a program as. Arguments: the placeholder that stands for
// every decrypted value, and the project name (Pulumi.yaml `name`; "" for no project).
//
// The CLI's path, restated here over the same library (gopkg.in/yaml.v3, which
// sdk/go/common/encoding/marshal.go has used since pulumi/pulumi 56666840, v3.50.0):
//   - workspace.LoadProjectStackBytes decodes the file into `any`, SimplifyMarshalledProject
//     casts map[any]any maps to map[string]any (only when the root itself is one), config keys
//     without a ':' get the project name as namespace (stackConfigNamespacedWithProject), and
//     the result is encoded again (yamlutil.YamlEncode, 2-space indent) and decoded a second time
//     into workspace.ProjectStack;
//   - config.Map decodes into map[string]Value and parses each key (config.ParseKey); a Value
//     decodes into `any` and goes through unmarshalObject (map keys with %v, time.Time by its
//     String(), a one-key {secure: <string>} map is a ciphertext) and object.MarshalString
//     (strings as they are, other scalars and objects as encoding/json text);
//   - at deploy, config.Map.Decrypt (always with a real or panicking decrypter, never the no-op
//     one) decodes every value again (JSON numbers as int64, else float64), decrypts, and gives
//     the program strings as is, anything else as json.Marshal text.
//
// Built against Debian's golang-gopkg-yaml.v3-dev with GO111MODULE=off.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

type ciphertext struct {
	Secure string `json:"secure"`
}

type value struct {
	Value   string `json:"value"`
	Secure  bool   `json:"secure"`
	Object  bool   `json:"object"`
	Program string `json:"program"`

	ciphertexts int
}

var placeholder string

// UnmarshalYAML is config.Value's: decode into any, unmarshalObject, MarshalString.
func (v *value) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	obj, err := toObject(raw)
	if err != nil {
		return err
	}
	switch t := obj.(type) {
	case bool, int64, uint64, float64, nil:
		text, err := json.Marshal(t)
		v.Value = string(text)
		return err
	case string:
		v.Value = t
		return nil
	case ciphertext:
		v.Value, v.Secure = t.Secure, true
		return nil
	}
	text, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	v.Value, v.Secure, v.Object, v.ciphertexts = string(text), hasSecure(obj), true, countSecure(obj)
	return nil
}

// toObject restates config's unmarshalObject over plain Go values.
func toObject(v any) (any, error) {
	switch t := v.(type) {
	case bool, uint64, int64, float64, string, nil:
		return t, nil
	case int:
		return int64(t), nil
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		f, err := t.Float64()
		if err != nil {
			return nil, fmt.Errorf("unrepresentable number %v: %w", t, err)
		}
		return f, nil
	case time.Time:
		return t.String(), nil
	case map[string]any:
		if len(t) == 1 {
			if text, ok := t["secure"].(string); ok {
				return ciphertext{text}, nil
			}
		}
		m := make(map[string]any, len(t))
		for key, item := range t {
			obj, err := toObject(item)
			if err != nil {
				return nil, err
			}
			m[key] = obj
		}
		return m, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for key, item := range t {
			m[fmt.Sprintf("%v", key)] = item
		}
		return toObject(m)
	case []any:
		a := make([]any, len(t))
		for i, item := range t {
			obj, err := toObject(item)
			if err != nil {
				return nil, err
			}
			a[i] = obj
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected wire type %T", v)
}

func hasSecure(v any) bool {
	switch t := v.(type) {
	case ciphertext:
		return true
	case map[string]any:
		for _, item := range t {
			if hasSecure(item) {
				return true
			}
		}
	case []any:
		for _, item := range t {
			if hasSecure(item) {
				return true
			}
		}
	}
	return false
}

// program is what the program receives: config.Map.Decrypt then Plaintext.marshalText.
func (v *value) program() (string, error) {
	if !v.Object {
		if v.Secure {
			return placeholder, nil
		}
		return v.Value, nil
	}
	dec := json.NewDecoder(strings.NewReader(v.Value))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return "", err
	}
	obj, err := toObject(raw)
	if err != nil {
		return "", err
	}
	if countSecure(obj) != v.ciphertexts {
		// e.g. {secure: 2001-12-14}: no ciphertext at load, one at deploy, which the engine then
		// fails to decrypt (or, with no secrets in the stack, panics on)
		return "", errors.New("a value reads as encrypted only at deploy, where it cannot be decrypted")
	}
	text, err := json.Marshal(decrypted(obj))
	return string(text), err
}

func countSecure(v any) int {
	n := 0
	switch t := v.(type) {
	case ciphertext:
		n = 1
	case map[string]any:
		for _, item := range t {
			n += countSecure(item)
		}
	case []any:
		for _, item := range t {
			n += countSecure(item)
		}
	}
	return n
}

func decrypted(v any) any {
	switch t := v.(type) {
	case ciphertext:
		return placeholder
	case map[string]any:
		for key, item := range t {
			t[key] = decrypted(item)
		}
	case []any:
		for i, item := range t {
			t[i] = decrypted(item)
		}
	}
	return v
}

// configMap is config.Map: a map[string]Value whose keys pass config.ParseKey.
type configMap map[string]value

func (m *configMap) UnmarshalYAML(unmarshal func(any) error) error {
	raw := make(map[string]value)
	if err := unmarshal(&raw); err != nil {
		return fmt.Errorf("could not unmarshal map: %w", err)
	}
	parsed := make(configMap, len(raw))
	for key, v := range raw {
		full, err := parseKey(key)
		if err != nil {
			return fmt.Errorf("could not unmarshal map: %w", err)
		}
		parsed[full] = v
	}
	*m = parsed
	return nil
}

// parseKey is config.ParseKey: namespace:name, or the legacy namespace:config:name (whose
// namespace and name must also be valid tokens; not restated here beyond being non-empty).
func parseKey(s string) (string, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 2 {
		return s, nil
	}
	if len(parts) == 3 && parts[1] == "config" && parts[0] != "" && parts[2] != "" {
		return parts[0] + ":" + parts[2], nil
	}
	return "", fmt.Errorf("could not parse %s as a configuration key "+
		"(configuration keys should be of the form `<namespace>:<name>`)", s)
}

type projectStack struct {
	SecretsProvider string    `yaml:"secretsprovider,omitempty"`
	EncryptedKey    string    `yaml:"encryptedkey,omitempty"`
	EncryptionSalt  string    `yaml:"encryptionsalt,omitempty"`
	Config          configMap `yaml:"config,omitempty"`
	Environment     yaml.Node `yaml:"environment,omitempty"` // workspace.Environment never fails
}

// simplify is workspace.SimplifyMarshalledValue.
func simplify(v any) (any, error) {
	if m, ok := v.(map[any]any); ok {
		out := make(map[string]any)
		for key, item := range m {
			text, ok := key.(string)
			if !ok {
				return nil, fmt.Errorf("expected only string keys, got '%s'", key)
			}
			inner, err := simplify(item)
			if err != nil {
				return nil, err
			}
			out[text] = inner
		}
		return out, nil
	}
	if a, ok := v.([]any); ok {
		out := make([]any, len(a))
		for i, item := range a {
			inner, err := simplify(item)
			if err != nil {
				return nil, err
			}
			out[i] = inner
		}
		return out, nil
	}
	return v, nil
}

// unmarshal is encoding.YAML.Unmarshal: type errors as they are, others as invalid YAML.
func unmarshal(data []byte, v any) error {
	err := yaml.Unmarshal(data, v)
	var typeErr *yaml.TypeError
	if err != nil && !errors.As(err, &typeErr) {
		return fmt.Errorf("invalid YAML file: %w", err)
	}
	return err
}

func load(data []byte, project string) (configMap, error) {
	var raw any
	if err := unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return configMap{}, nil
	}
	simplified, err := simplify(raw)
	if err != nil {
		return nil, err
	}
	root, ok := simplified.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected project to be an object, was '%T'", simplified)
	}
	if cfg, ok := root["config"].(map[string]any); ok && project != "" {
		namespaced := make(map[string]any)
		for key, item := range cfg {
			if !strings.Contains(key, ":") {
				key = project + ":" + key
			}
			namespaced[key] = item
		}
		root["config"] = namespaced
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	_ = enc.Encode(root) // LoadProjectStackBytes ignores this error too
	var stack projectStack
	if err := unmarshal(buf.Bytes(), &stack); err != nil {
		return nil, err
	}
	return stack.Config, nil
}

func main() {
	placeholder = os.Args[1]
	project := ""
	if len(os.Args) > 2 {
		project = os.Args[2]
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		panic(err)
	}
	out := map[string]any{}
	cfg, err := load(data, project)
	if err != nil {
		out["error"] = err.Error()
	} else {
		for key, v := range cfg {
			if v.Program, err = v.program(); err != nil {
				out["error"] = fmt.Sprintf("%s at deploy: %v", key, err)
			}
			cfg[key] = v
		}
		if out["error"] == nil {
			out["config"] = cfg
		}
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
}
