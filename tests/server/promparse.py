"""A strict parser for the Prometheus text exposition format (version 0.0.4), for the /metrics tests.

parse(text) returns {family name: Family}; it raises PromError for anything a Prometheus server would
reject or that breaks the format's rules:
  - HELP/TYPE lines: at most one of each per family, TYPE before the family's first sample, a known type;
  - every sample belongs to a family that has a TYPE (histogram samples through _bucket/_sum/_count,
    summary samples through _sum/_count), and a family's samples are contiguous;
  - metric and label names are valid, label values are quoted with only \\\\, \\" and \\n escapes,
    no label appears twice in a sample, no series appears twice;
  - values are floats (+Inf, -Inf, NaN allowed), counters are >= 0;
  - histograms: each series has an le="+Inf" bucket, buckets cumulative and non-decreasing in le order,
    the +Inf bucket equal to _count, and a _sum.
"""
import math
import re

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class PromError(ValueError):
    pass


class Family:
    def __init__(self, name):
        self.name = name
        self.type = None
        self.help = None
        self.samples = []  # (sample name, {label: value}, float value)

    def series(self, suffix="", **labels):
        """Samples named name+suffix whose labels include `labels`."""
        want = self.name + suffix
        return [(l, v) for (n, l, v) in self.samples if n == want and all(l.get(k) == x for k, x in labels.items())]

    def value(self, suffix="", **labels):
        """The one sample matching, or None."""
        s = self.series(suffix, **labels)
        if len(s) > 1:
            raise PromError(f"{self.name}{suffix} {labels}: {len(s)} samples match")
        return s[0][1] if s else None


def _unescape_help(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "\\n":
            out.append("\\" if s[i + 1] == "\\" else "\n")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_float(s, where):
    if s in ("+Inf", "Inf", "inf", "+inf"):
        return math.inf
    if s in ("-Inf", "-inf"):
        return -math.inf
    if s in ("NaN", "nan"):
        return math.nan
    try:
        return float(s)
    except ValueError:
        raise PromError(f"{where}: bad value {s!r}") from None


def _parse_labels(line, i, where):
    """Parses `{a="x",b="y"}` starting at line[i] == '{'; returns (labels, index after '}')."""
    labels = {}
    i += 1
    while True:
        while i < len(line) and line[i] == " ":
            i += 1
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", line[i:])
        if not m:
            raise PromError(f"{where}: bad label name at {line[i:]!r}")
        name = m.group(0)
        i += len(name)
        if line[i:i + 2] != '="':
            raise PromError(f"{where}: expected =\" after label {name}")
        i += 2
        value = []
        while True:
            if i >= len(line):
                raise PromError(f"{where}: unterminated value of label {name}")
            c = line[i]
            if c == "\\":
                if i + 1 >= len(line) or line[i + 1] not in '\\"n':
                    raise PromError(f"{where}: bad escape in label {name}")
                value.append({"\\": "\\", '"': '"', "n": "\n"}[line[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise PromError(f"{where}: label {name} twice")
        labels[name] = "".join(value)
        if i < len(line) and line[i] == ",":
            i += 1
        elif i < len(line) and line[i] == "}":
            continue
        else:
            raise PromError(f"{where}: expected , or }} after label {name}")


def _family_of(sample_name, families):
    """The family a sample belongs to: its own name, or a histogram/summary base name."""
    if sample_name in families and families[sample_name].type not in ("histogram", "summary"):
        return families[sample_name]
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            base = families.get(sample_name[: -len(suffix)])
            if base is not None and (base.type == "histogram" or (base.type == "summary" and suffix != "_bucket")):
                return base
    if sample_name in families and families[sample_name].type == "summary":
        return families[sample_name]  # quantile samples
    return None


def parse(text):
    families = {}
    finished = set()  # families whose samples have ended (another family's began)
    current = None
    seen_series = set()
    for n, line in enumerate(text.split("\n"), 1):
        where = f"line {n}"
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.match(name):
                    raise PromError(f"{where}: bad metric name {name!r}")
                fam = families.setdefault(name, Family(name))
                if name in finished or (fam.samples and current is not fam):
                    raise PromError(f"{where}: {parts[1]} for {name} after its samples")
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if fam.help is not None:
                        raise PromError(f"{where}: second HELP for {name}")
                    fam.help = _unescape_help(rest)
                else:
                    if fam.type is not None:
                        raise PromError(f"{where}: second TYPE for {name}")
                    if fam.samples:
                        raise PromError(f"{where}: TYPE for {name} after its first sample")
                    if rest not in TYPES:
                        raise PromError(f"{where}: unknown type {rest!r}")
                    fam.type = rest
            continue  # other comments are allowed
        m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        if not m:
            raise PromError(f"{where}: bad metric name in {line!r}")
        sname = m.group(0)
        i = len(sname)
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, where)
        rest = line[i:].split()
        if len(rest) not in (1, 2) or line[i:i + 1] != " ":
            raise PromError(f"{where}: expected ' value [timestamp]' after {sname}")
        value = _parse_float(rest[0], where)
        if len(rest) == 2 and not re.match(r"-?\d+\Z", rest[1]):
            raise PromError(f"{where}: bad timestamp {rest[1]!r}")
        fam = _family_of(sname, families)
        if fam is None or fam.type is None:
            raise PromError(f"{where}: sample {sname} has no TYPE")
        if fam is not current:
            if fam.name in finished:
                raise PromError(f"{where}: samples of {fam.name} are not contiguous")
            if current is not None:
                finished.add(current.name)
            current = fam
        key = (sname, tuple(sorted(labels.items())))
        if key in seen_series:
            raise PromError(f"{where}: series {sname}{labels} twice")
        seen_series.add(key)
        if fam.type == "counter" and not value >= 0:
            raise PromError(f"{where}: counter {sname} is {value}")
        fam.samples.append((sname, labels, value))
    for fam in families.values():
        if fam.type == "histogram":
            _check_histogram(fam)
    return families


def _check_histogram(fam):
    groups = {}
    for sname, labels, value in fam.samples:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if sname == fam.name + "_bucket":
            if "le" not in labels:
                raise PromError(f"{fam.name}: bucket without le {labels}")
            g["buckets"].append((_parse_float(labels["le"], fam.name), value))
        elif sname == fam.name + "_sum":
            g["sum"] = value
        elif sname == fam.name + "_count":
            g["count"] = value
        else:
            raise PromError(f"{fam.name}: unexpected sample {sname}")
    for base, g in groups.items():
        b = sorted(g["buckets"])
        if not b or b[-1][0] != math.inf:
            raise PromError(f"{fam.name}{dict(base)}: no le=\"+Inf\" bucket")
        if len({le for le, _ in b}) != len(b):
            raise PromError(f"{fam.name}{dict(base)}: repeated le")
        for (le0, c0), (le1, c1) in zip(b, b[1:]):
            if c1 < c0:
                raise PromError(f"{fam.name}{dict(base)}: bucket le={le1} ({c1}) < le={le0} ({c0})")
        if g["count"] is None or g["sum"] is None:
            raise PromError(f"{fam.name}{dict(base)}: missing _count or _sum")
        if b[-1][1] != g["count"]:
            raise PromError(f"{fam.name}{dict(base)}: +Inf bucket {b[-1][1]} != _count {g['count']}")
