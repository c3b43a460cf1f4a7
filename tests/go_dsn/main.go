// Parses go-sql-driver DSNs with the real driver and prints what it understood, one JSON
// object per input line. Test support only: proves our DSNs survive Kuscia's own parser.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

type parsed struct {
	User   string `json:"user"`
	Passwd string `json:"password"`
	Net    string `json:"net"`
	Addr   string `json:"addr"`
	DBName string `json:"database"`
	Error  string `json:"error,omitempty"`
	Format string `json:"formatted"`
}

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := strings.TrimPrefix(scanner.Text(), "mysql://")
		cfg, err := mysql.ParseDSN(line)
		out := parsed{}
		if err != nil {
			out.Error = err.Error()
		} else {
			out = parsed{User: cfg.User, Passwd: cfg.Passwd, Net: cfg.Net, Addr: cfg.Addr, DBName: cfg.DBName, Format: cfg.FormatDSN()}
		}
		encoded, _ := json.Marshal(out)
		fmt.Println(string(encoded))
	}
}
