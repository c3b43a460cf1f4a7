// Reads a Pulumi stack file from stdin the way the Pulumi CLI does and prints, as JSON, the
// string each config value reaches a program as. The CLI decodes stack files with
// gopkg.in/yaml.v2 into config values that first try to decode as a plain string (so a scalar
// keeps its YAML text) and otherwise as an object, which is re-encoded with encoding/json; an
// object of exactly {secure: <string>} is an encrypted scalar, and an object holding one anywhere
// is a secret object. At deploy a secret object is decoded again (numbers as int64, else
// float64), its encrypted leaves replaced by their plaintext, and encoded again. This helper
// restates those rules in a few lines over the same two libraries, with the placeholder given as
// the first argument standing for every decrypted value, so tests/test_stackfile.py can compare
// kuscia_components.stackfile against yaml.v2 itself.
// Built against Debian's golang-gopkg-yaml.v2-dev with GO111MODULE=off.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v2"
)

type value struct {
	Value   string `json:"value"`
	Secure  bool   `json:"secure"`
	Object  bool   `json:"object"`
	Program string `json:"program"`
}

var placeholder string

// program is what the program receives once Pulumi has decrypted the value.
func (v *value) program() (string, error) {
	if !v.Secure {
		return v.Value, nil
	}
	if !v.Object {
		return placeholder, nil
	}
	dec := json.NewDecoder(strings.NewReader(v.Value))
	dec.UseNumber()
	var obj interface{}
	if err := dec.Decode(&obj); err != nil {
		return "", err
	}
	encoded, err := json.Marshal(decrypted(obj))
	return string(encoded), err
}

func decrypted(v interface{}) interface{} {
	if _, ok := secureText(v); ok {
		return placeholder
	}
	switch t := v.(type) {
	case map[string]interface{}:
		for key, val := range t {
			t[key] = decrypted(val)
		}
	case []interface{}:
		for i, val := range t {
			t[i] = decrypted(val)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

func (v *value) UnmarshalYAML(unmarshal func(interface{}) error) error {
	if err := unmarshal(&v.Value); err == nil {
		return nil
	}
	var obj interface{}
	if err := unmarshal(&obj); err != nil {
		return fmt.Errorf("malformed config value: %w", err)
	}
	obj = stringKeys(obj)
	if text, ok := secureText(obj); ok {
		v.Value, v.Secure = text, true
		return nil
	}
	encoded, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("marshalling obj: %w", err)
	}
	v.Value, v.Secure, v.Object = string(encoded), hasSecure(obj), true
	return nil
}

func stringKeys(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for key, val := range t {
			m[fmt.Sprintf("%v", key)] = stringKeys(val)
		}
		return m
	case []interface{}:
		for i, val := range t {
			t[i] = stringKeys(val)
		}
	}
	return v
}

func secureText(v interface{}) (string, bool) {
	if m, ok := v.(map[string]interface{}); ok && len(m) == 1 {
		if text, ok := m["secure"].(string); ok {
			return text, true
		}
	}
	return "", false
}

func hasSecure(v interface{}) bool {
	if _, ok := secureText(v); ok {
		return true
	}
	switch t := v.(type) {
	case map[string]interface{}:
		for _, val := range t {
			if hasSecure(val) {
				return true
			}
		}
	case []interface{}:
		for _, val := range t {
			if hasSecure(val) {
				return true
			}
		}
	}
	return false
}

func main() {
	placeholder = os.Args[1]
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		panic(err)
	}
	var doc struct {
		Config map[string]value `yaml:"config"`
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		out["error"] = err.Error()
	} else {
		for key, v := range doc.Config {
			program, err := v.program()
			if err != nil {
				panic(err)
			}
			v.Program = program
			doc.Config[key] = v
		}
		out["config"] = doc.Config
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
}
