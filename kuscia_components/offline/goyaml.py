"""Go's gopkg.in/yaml.v3 (decoding into `any`) and encoding/json, restated for stack files.

The Pulumi CLI decodes a stack file into `any` with yaml.v3, encodes it again and decodes it a
second time (workspace.LoadProjectStackBytes); stackfile.py follows those steps with the
functions here. yaml.v3 resolves plain scalars by YAML 1.2's core rules plus a few of its own
(resolve.go): only true/false (any case form) are booleans, so `yes`, `on` and `y` stay strings;
`0x1F`, `0o17`, `0b11`, `010` (octal, kept from YAML 1.1) and `1_000` are integers; `.inf` and
`.nan` are floats; `2001-12-14` and three other layouts are time.Time values. Explicit core tags
must fit the text (`!!int abc` is an error); other tags are ignored.

Values are plain Python ones (str, bool, int for Go's int/int64/uint64, float, None, list) plus
GoTime and GoMap; GoMap keys are str, or `(type, value)` pairs so that Go's distinct keys 1, 1.0
and true stay distinct (Python's 1 == 1.0 == True).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from kuscia_components.config import yaml_limits

NULL, BOOL, INT, FLOAT, STR = "!!null", "!!bool", "!!int", "!!float", "!!str"
TIMESTAMP, BINARY, MERGE = "!!timestamp", "!!binary", "!!merge"
_LONG = "tag:yaml.org,2002:"
_RESOLVABLE = {"", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP}

_WORDS: dict[str, tuple[str, Any]] = {
    **{w: (BOOL, True) for w in ("true", "True", "TRUE")},
    **{w: (BOOL, False) for w in ("false", "False", "FALSE")},
    **{w: (NULL, None) for w in ("", "~", "null", "Null", "NULL")},
    **{w: (FLOAT, math.nan) for w in (".nan", ".NaN", ".NAN")},
    **{w: (FLOAT, math.inf) for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{w: (FLOAT, -math.inf) for w in ("-.inf", "-.Inf", "-.INF")},
}  # resolve.go also lists "<<", but never reaches it: '<' is not in its hint table
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")  # what strconv.ParseFloat takes after a '.'
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|(?P<legacy>0[0-7]*)|(?P<dec>[1-9][0-9]*))"
)
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:[.,](?P<frac>[0-9]{1,9}))?(?P<tz>Z|[-+][0-9]{2}:[0-9]{2})?)?"
)


class GoYamlError(ValueError):
    """What yaml.v3 or encoding/json refuses; the message says what and how to fix it."""


def short_tag(tag: str | None) -> str:
    if not tag or tag == "!":
        return ""
    return "!!" + tag[len(_LONG) :] if tag.startswith(_LONG) else tag


@dataclass(frozen=True)
class GoTime:
    """A time.Time from a YAML timestamp: its fields as written and a zone offset in seconds
    (None: UTC). A non-zero offset prints as a fabricated zone ("-0500 -0500"), which is what Go
    does when the machine's local zone has another offset (on a UTC machine, always)."""

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    nanos: int = 0
    offset: int | None = None

    def _clock(self, sep: str) -> str:
        frac = f".{self.nanos:09d}".rstrip("0") if self.nanos else ""
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}{sep}"
            f"{self.hour:02d}:{self.minute:02d}:{self.second:02d}{frac}"
        )

    def _offset(self, colon: str) -> str:
        minutes = abs(self.offset or 0) // 60
        sign = "-" if (self.offset or 0) < 0 else "+"
        return f"{sign}{minutes // 60:02d}{colon}{minutes % 60:02d}"

    def go_string(self) -> str:
        """time.Time.String(): "2006-01-02 15:04:05.999999999 -0700 MST"."""
        zone = "+0000 UTC" if self.offset is None else f"{self._offset('')} {self._offset('')}"
        return f"{self._clock(' ')} {zone}"

    def rfc3339(self) -> str:
        """Format(time.RFC3339Nano), as yaml.v3 encodes a time.Time."""
        return self._clock("T") + ("Z" if self.offset is None else self._offset(":"))


def parse_timestamp(text: str) -> GoTime | None:
    """yaml.v3 parseTimestamp: time.Parse with its four layouts, Go's range checks included."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(month, year):
        return None
    if match["h"] is None:
        return GoTime(year, month, day)
    hour, minute, second = int(match["h"]), int(match["mi"]), int(match["s"])
    if hour > 23 or minute > 59 or second > 59 or (match["sep"] == " ") == bool(match["tz"]):
        return None  # the T and t layouts need a zone, the space-separated one has none
    nanos = int((match["frac"] or "0").ljust(9, "0"))  # more than 9 digits: not a time (Go 1.19)
    offset = None
    if match["tz"] and match["tz"] != "Z":
        hours, minutes = int(match["tz"][1:3]), int(match["tz"][4:6])  # Go checks no range here
        offset = (hours * 3600 + minutes * 60) * (-1 if match["tz"][0] == "-" else 1)
        offset = offset or None  # a zero offset comes back as UTC once encoded again ("Z")
    return GoTime(year, month, day, hour, minute, second, nanos, offset)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def resolve(tag: str, text: str) -> tuple[str, Any]:
    """(tag, value) as yaml.v3's resolve(tag, in) gives them; `tag` is "" for a plain scalar,
    else its short form. GoYamlError where an explicit tag does not fit the text."""
    if tag not in _RESOLVABLE:
        return tag, text
    if tag == STR:
        return STR, text
    rtag, value = _resolve_plain(text, timestamps=tag in ("", TIMESTAMP))
    if tag in ("", rtag):
        return rtag, value
    if tag == FLOAT and rtag == INT:
        return FLOAT, float(value)
    raise GoYamlError(f"cannot decode {rtag} `{text}` as a {tag}")


def _resolve_plain(text: str, *, timestamps: bool) -> tuple[str, Any]:
    if text in _WORDS:
        return _WORDS[text]
    first = text[:1]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text) and math.isfinite(number := float(text)):
            return FLOAT, number
        return STR, text
    if not first or first not in "+-0123456789":
        return STR, text
    if timestamps and (stamp := parse_timestamp(text)) is not None:
        return TIMESTAMP, stamp
    plain = text.replace("_", "")
    integer = _go_parse_int(plain)
    if integer is not None:
        return INT, integer
    if _YAML_STYLE_FLOAT.fullmatch(plain) and math.isfinite(number := float(plain)):
        return FLOAT, number
    return STR, text


def _go_parse_int(plain: str) -> int | None:
    """strconv.ParseInt(s, 0, 64), then ParseUint(s, 0, 64) for the unsigned top half (the
    later 0b/0o branches of resolve.go accept nothing these two do not)."""
    match = _GO_INT.fullmatch(plain)
    if match is None:
        return None
    digits, base = next(
        (match[g], b)
        for g, b in (("hex", 16), ("oct", 8), ("bin", 2), ("legacy", 8), ("dec", 10))
        if match[g] is not None
    )
    value = int(digits, base) if len(digits) <= 70 else 2**64
    if match["sign"] == "-":
        return -value if value <= 2**63 else None
    if value < 2**63 or (not match["sign"] and value < 2**64):
        return value
    return None


def binary_text(text: str) -> str:
    """A !!binary scalar's bytes as a string (base64.StdEncoding, which skips only CR and LF);
    bytes that are not UTF-8 become U+FFFD each, as encoding/json later makes them."""
    try:
        data = base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise GoYamlError("!!binary value contains invalid base64 data") from None
    return "".join(
        "\ufffd" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in data.decode("utf-8", "surrogateescape")
    )


# ---------------------------------------------------------------------------------------------
# Map keys, and the encode-decode round trip
# ---------------------------------------------------------------------------------------------


class GoMap(dict[Any, Any]):
    """map[string]any (general=False) or map[any]any, as yaml.v3 decodes a mapping into `any`."""

    general = False


def go_key(value: Any) -> Any:
    """The dict key standing for a Go map key: strings as they are, others typed."""
    if isinstance(value, str):
        return value
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, GoTime):
        return ("time", value)
    return ("float" if isinstance(value, float) else "int", value)


def key_value(key: Any) -> Any:
    return key if isinstance(key, str) else key[1]


def encoded_text(value: Any) -> str:
    """The scalar text yaml.v3's encoder writes for a value (quoted or not)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoTime):
        return value.rfc3339()
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value) or go_float(value, json_style=False)
    return str(value)


def round_trip(value: Any) -> Any:
    """The value after yamlutil.YamlEncode and a second decode into `any`: floats come back by
    their %g text (2.0 as the integer 2, -0.0 as 0), a zero time offset as UTC; strings, ints and
    booleans as they were. A string key "<<" (written quoted the first time) is written plain, so
    it is a merge key now. GoYamlError where two keys of one map now read the same, or a merge
    key's value is not a map or a list of maps."""
    if isinstance(value, list):
        return [round_trip(item) for item in value]
    if not isinstance(value, GoMap):
        if isinstance(value, float | GoTime):
            return resolve("", encoded_text(value))[1]
        return value
    texts: set[str] = set()
    for key in value:
        text = encoded_text(key_value(key))
        if text in texts:
            raise GoYamlError(
                f'mapping key "{_clip(text)}" is defined twice once written out again; rename one'
            )
        texts.add(text)
    result = GoMap()
    result.general = any(not isinstance(key, str) for key in value)
    for key, item in value.items():
        if key != "<<":
            result[go_key(round_trip(key_value(key)))] = round_trip(item)
    if "<<" in value:
        merged = round_trip(value["<<"])
        sources = merged if isinstance(merged, list) else [merged]
        if not all(isinstance(source, GoMap) for source in sources):
            raise GoYamlError("map merge requires map or sequence of maps as the value (a key '<<')")
        for source in sources:
            for key, item in source.items():
                if not result.general and not isinstance(key, str):
                    if key_value(key) is None:
                        continue  # a null key into a string: skipped
                    key = encoded_text(key_value(key))
                if key not in result and key != "<<":
                    result[key] = item
    return result


def fmt_key(key: Any) -> str:
    """fmt.Sprintf("%v", key), as config.unmarshalObject turns a map[any]any key into a string."""
    value = key_value(key)
    if value is None:
        return "<nil>"
    if isinstance(value, GoTime):
        return value.go_string()
    if isinstance(value, float):
        return go_float(value, json_style=False)
    return encoded_text(value)


# ---------------------------------------------------------------------------------------------
# encoding/json
# ---------------------------------------------------------------------------------------------


def go_json(value: Any) -> str:
    """json.Marshal: sorted keys, compact, Go's numbers and escapes; NaN and infinities refused."""
    if isinstance(value, dict):
        items = (f"{go_json_string(k)}:{go_json(value[k])}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, str):
        return go_json_string(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GoYamlError(f"json: unsupported value: {go_float(value, json_style=True)}")
        return go_float(value, json_style=True)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json_string(text: str) -> str:
    """encoding/json's string form: HTML-safe escapes, other control characters as \\u00XX."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


_NEEDS_ESCAPE = re.compile('["\\\\<>&\u2028\u2029\x00-\x1f]')  # a regex pass, not a Python loop per character


def _escape(match: re.Match[str]) -> str:
    c = match[0]
    return _GO_ESCAPES.get(c) or f"\\u{ord(c):04x}"


def go_float(number: float, *, json_style: bool) -> str:
    """Go's shortest float formatting: encoding/json (`f`, or `e` outside [1e-6, 1e21)) when
    json_style, else strconv 'g' / fmt's %v (exponent from 1e6 or below 1e-4)."""
    if not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("+Inf" if number > 0 else "-Inf")
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    if number == 0:
        return f"{sign}0"
    decimal = Decimal(repr(abs(number))).normalize()
    _, digit_tuple, exponent = decimal.as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # value = 0.<digits> * 10**point
    magnitude = point - 1
    if json_style:
        scientific = abs(number) < 1e-6 or abs(number) >= 1e21
    else:
        scientific = magnitude < -4 or magnitude >= 6
    if scientific:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        exp_text = f"{'-' if magnitude < 0 else '+'}{abs(magnitude):02d}"
        if json_style and exp_text.startswith("-0"):
            exp_text = "-" + exp_text[2:]
        return f"{sign}{mantissa}e{exp_text}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


# ---------------------------------------------------------------------------------------------
# Decoding composed nodes into `any`
# ---------------------------------------------------------------------------------------------


class V3Loader(yaml_limits.BoundedLoaderMixin, yaml.SafeLoader):
    """PyYAML's composer with yaml.v3's tags for plain scalars and the node budget."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _LONG + (MERGE if value == "<<" else resolve("", value)[0])[2:]  # parser.scalar
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]  # PyYAML is unannotated


def key_identity(node: yaml.ScalarNode) -> Any:
    """The Go value a scalar mapping key decodes to, as a dict key (for the alias counter)."""
    try:
        return go_key(_scalar(node))
    except GoYamlError:
        return ("error", node.value)


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = short_tag(node.tag)
    if tag == BINARY:
        return binary_text(node.value)
    return resolve(tag, node.value)[1]


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}: "


class Decoder:
    """yaml.v3's decoder.unmarshal into `any`: merge keys after the mapping's own keys (which
    win), duplicate keys refused, mappings with only string keys as map[string]any."""

    def __init__(self, root: yaml.Node) -> None:
        self.slots = yaml_limits.alias_slots(root)
        self.merged: set[Any] | None = None

    def decode(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            try:
                return _scalar(node)
            except GoYamlError as err:
                raise GoYamlError(_line(node) + str(err)) from None
        if isinstance(node, yaml.SequenceNode):
            return [self.decode(item) for item in node.value]
        out = GoMap()
        out.general = not all(
            isinstance(k, yaml.ScalarNode) and short_tag(k.tag) in (STR, MERGE) for k, _ in node.value
        )
        self.mapping(node, out)  # type: ignore[arg-type]  # the only other node kind
        return out

    def _check_unique(self, node: yaml.MappingNode) -> None:
        seen: dict[tuple[str, str], yaml.Node] = {}
        for index, (key, _) in enumerate(node.value):
            alias = (id(node), 2 * index) in self.slots
            text = key.value if isinstance(key, yaml.ScalarNode) else ""
            signature = ("alias" if alias else type(key).__name__, text)
            if signature in seen:
                first = seen[signature].start_mark.line + 1
                raise GoYamlError(f'{_line(key)}mapping key "{_clip(text)}" already defined at line {first}')
            seen[signature] = key

    def _key(self, node: yaml.Node, out: GoMap) -> tuple[bool, Any]:
        """(good, dict key) of a mapping key decoded into the map's key type."""
        if not isinstance(node, yaml.ScalarNode):
            self.decode(node)
            raise GoYamlError(f"{_line(node)}invalid map key: a mapping key must be a scalar")
        if out.general:
            return True, go_key(self.decode(node))
        value = self.decode(node)  # into a string: any scalar gives its text, null is skipped
        if value is None:
            return False, None
        return True, value if isinstance(value, str) and short_tag(node.tag) in (STR, BINARY) else node.value

    def mapping(self, node: yaml.MappingNode, out: GoMap) -> None:
        self._check_unique(node)
        merged, self.merged = self.merged, None
        merge: tuple[int, yaml.Node] | None = None
        for index, (key, value) in enumerate(node.value):
            if isinstance(key, yaml.ScalarNode) and key.tag == _LONG + "merge":
                merge = (2 * index + 1, value)
                continue
            good, dict_key = self._key(key, out)
            if not good:
                continue
            if merged is not None:
                if dict_key in merged:
                    continue
                merged.add(dict_key)
            out[dict_key] = self.decode(value)
        self.merged = merged
        if merge is not None:
            self.merge(node, *merge, out)

    def merge(self, parent: yaml.MappingNode, index: int, value: yaml.Node, out: GoMap) -> None:
        outer = self.merged
        if outer is None:
            self.merged = set()
            for key, _ in parent.value:
                if not isinstance(key, yaml.ScalarNode):
                    raise GoYamlError(f"{_line(key)}a mapping key must be a scalar")
                self.merged.add(go_key(self.decode(key)))
        aliased = (id(parent), index) in self.slots
        items = value.value if isinstance(value, yaml.SequenceNode) and not aliased else [value]
        for item in items:
            if not isinstance(item, yaml.MappingNode):
                raise GoYamlError(f"{_line(item)}map merge requires map or sequence of maps as the value")
            self.mapping(item, out)
        self.merged = outer


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
