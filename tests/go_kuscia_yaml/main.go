// Decodes kuscia.yaml from stdin with gopkg.in/yaml.v3, the library Kuscia uses, and prints
// the decoded values as JSON. The struct declares, with Kuscia's yaml tags (see
// cmd/kuscia/confloader/kuscia_config.go upstream, AutonomyKusciaConfig), only the fields our
// builder writes; KnownFields(true) turns any other key (a typo Kuscia would silently ignore)
// into an error. Test helper for tests/test_kuscia_yaml.py; built against Debian's
// golang-gopkg-yaml.v3-dev with GO111MODULE=off.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

type runk struct {
	Namespace      string   `yaml:"namespace" json:"namespace"`
	DNSServers     []string `yaml:"dnsServers" json:"dnsServers"`
	KubeconfigFile string   `yaml:"kubeconfigFile" json:"kubeconfigFile"`
}

type capacity struct {
	CPU              string `yaml:"cpu" json:"cpu"`
	Memory           string `yaml:"memory" json:"memory"`
	Storage          string `yaml:"storage" json:"storage"`
	EphemeralStorage string `yaml:"ephemeralStorage" json:"ephemeralStorage"`
}

type autonomy struct {
	Mode              string          `yaml:"mode" json:"mode"`
	DomainID          string          `yaml:"domainID" json:"domainID"`
	DomainKeyData     string          `yaml:"domainKeyData" json:"domainKeyData"`
	LogLevel          string          `yaml:"logLevel" json:"logLevel"`
	Protocol          string          `yaml:"protocol,omitempty" json:"protocol"`
	Runtime           string          `yaml:"runtime" json:"runtime"`
	Runk              *runk           `yaml:"runk" json:"runk"`
	Capacity          *capacity       `yaml:"capacity" json:"capacity"`
	DatastoreEndpoint string          `yaml:"datastoreEndpoint" json:"datastoreEndpoint"`
	KusciaAPI         *map[string]any `yaml:"kusciaAPI,omitempty" json:"kusciaAPI"`
}

func main() {
	decoder := yaml.NewDecoder(os.Stdin)
	decoder.KnownFields(true)
	var conf autonomy
	if err := decoder.Decode(&conf); err != nil {
		fmt.Printf("{\"error\": %q}\n", err.Error())
		return
	}
	out, _ := json.Marshal(conf)
	fmt.Println(string(out))
}
