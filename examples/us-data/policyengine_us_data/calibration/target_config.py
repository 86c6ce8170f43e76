"""The YAML reader behind `unified_calibration.load_target_config` (the real
one uses PyYAML; the example parses the small subset its target configs use:
top-level `include:` / `exclude:` lists of flat `key: value` rules, `#` comments).
"""

from policyengine_us_data.utils.io import UsageError

RULE_KEYS = ("variable", "geo_level", "domain_variable")


def _scalar(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_target_config(text, source="<config>"):
    config = {"include": [], "exclude": []}
    section = None
    rule = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        where = "%s:%d" % (source, lineno)
        if indent == 0:
            key, sep, rest = body.partition(":")
            if not sep or key not in config:
                raise UsageError("%s: expected 'include:' or 'exclude:', got %r" % (where, body))
            section, rule = key, None
            rest = rest.strip()
            if rest not in ("", "[]"):
                raise UsageError("%s: inline lists are not supported" % where)
            continue
        if section is None:
            raise UsageError("%s: entry outside include/exclude" % where)
        if body.startswith("- "):
            rule = {}
            config[section].append(rule)
            body = body[2:].strip()
        elif rule is None:
            raise UsageError("%s: expected '- variable: ...'" % where)
        key, sep, value = body.partition(":")
        key = key.strip()
        if not sep or key not in RULE_KEYS:
            raise UsageError("%s: unknown rule key %r (allowed: %s)" % (where, key, ", ".join(RULE_KEYS)))
        rule[key] = _scalar(value)
    for section in ("include", "exclude"):
        for r in config[section]:
            if "variable" not in r:
                raise UsageError("%s: every %s rule needs a variable" % (source, section))
    return config


def load_target_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UsageError("cannot read target config %s: %s" % (path, exc.strerror))
    return parse_target_config(text, path)
