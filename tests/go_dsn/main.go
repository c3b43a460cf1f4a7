// Parses go-sql-driver DSNs with the real driver and prints what it understood, one JSON
// object per input line. Test support only: proves our DSNs survive Kuscia's own parser, and
// the ParseDSN -> FormatDSN -> ParseDSN round trip older kine releases put every DSN through.
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
	User      string            `json:"user"`
	Passwd    string            `json:"password"`
	Net       string            `json:"net"`
	Addr      string            `json:"addr"`
	DBName    string            `json:"database"`
	Params    map[string]string `json:"params"`
	ParseTime bool              `json:"parseTime"`
	Loc       string            `json:"loc"`
	Formatted string            `json:"formatted"`
	Reparsed  *parsed           `json:"reparsed,omitempty"`
	Error     string            `json:"error,omitempty"`
}

func parse(dsn string, again bool) parsed {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return parsed{Error: err.Error()}
	}
	out := parsed{User: cfg.User, Passwd: cfg.Passwd, Net: cfg.Net, Addr: cfg.Addr, DBName: cfg.DBName,
		Params: cfg.Params, ParseTime: cfg.ParseTime, Loc: cfg.Loc.String(), Formatted: cfg.FormatDSN()}
	if again {
		reparsed := parse(out.Formatted, false)
		out.Reparsed = &reparsed
	}
	return out
}

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		// Kuscia checks the scheme and hands the rest to ParseDSN.
		encoded, _ := json.Marshal(parse(strings.TrimPrefix(scanner.Text(), "mysql://"), true))
		fmt.Println(string(encoded))
	}
}
