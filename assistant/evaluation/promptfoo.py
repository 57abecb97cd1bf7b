"""promptfoo configs in courselab: read `promptfooconfig.yaml` into prompts x providers x tests.

    prompts:   inline strings with {{var}}, file:// text (split on '---' lines) or chat files
               (YAML/JSON lists of {role, content}); {role, content} objects; {id|raw, label}
    providers: courselab registry names, courselab/<template> (the course assistant),
               openai:chat:<model> (or openai:<model>) with config apiBaseUrl, apiKey,
               apiKeyEnvar, temperature, max_tokens, top_p, seed, stop, passthrough; labels
    tests:     inline, or file:// CSV (vars as columns, __expected, __description,
               __metadata:*), YAML, JSON or JSONL; defaultTest; vars (lists expand, file://
               text); description, metadata, threshold, options (prefix, suffix, provider)
    evaluateOptions: repeat, maxConcurrency

Rendering follows the rules of `prompts/`: only plain `{{name}}` fields are filled in, so
no config can run code. Nunjucks tags, filters and attribute access, `file://*.js|py`
prompt or provider functions, and `javascript`/`python` assertions are refused with a
message naming the entry; so is every assertion type that is not in `metrics.ASSERTIONS`.
An openai provider's key is sent to its apiBaseUrl, so `apiKeyEnvar` may only name a
variable ending in `_API_KEY` (not, say, AWS_SECRET_ACCESS_KEY); any other name is refused.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import InputError
from assistant.evaluation.metrics import ASSERTIONS
from assistant.files import read_text, yaml_problem

MAX_FILE_BYTES = 5_000_000
MAX_TESTS = 10_000
KEYS = {"description", "prompts", "providers", "tests", "defaultTest", "evaluateOptions",
        "sharing", "outputPath", "env", "tags", "metadata", "writeLatestResults"}
_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CODE = (".js", ".cjs", ".mjs", ".ts", ".py", ".sh")
CODE_ASSERTIONS = {"javascript", "python", "webhook", "ruby"}


def is_promptfoo_config(path: Path) -> bool:
    """A YAML mapping with promptfoo's keys (`prompts`/`providers`/`tests`), not a suite's."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return (isinstance(data, dict) and bool({"prompts", "providers"} & set(data))
            and "datasets" not in data)


@dataclass
class Prompt:
    label: str
    raw: str  # as written, for the output JSON
    messages: list[tuple[str, str]]  # (role, text with {{var}} fields)

    @property
    def variables(self) -> set[str]:
        return {name for _, text in self.messages for name in _FIELD.findall(text)}

    def render(self, variables: dict) -> list[tuple[str, str]]:
        """Fill {{name}} fields; a field with no var is left empty, as Nunjucks does."""
        return [(role, _FIELD.sub(lambda m: _as_text(variables.get(m.group(1), "")), text))
                for role, text in self.messages]


@dataclass
class Provider:
    id: str
    label: str
    model: str  # a registry name, courselab/<template>, or openai:<model>
    base_url: str | None = None
    api_key: str | None = None
    options: dict = field(default_factory=dict)  # max_tokens, temperature, top_p, seed, stop
    passthrough: dict = field(default_factory=dict)  # extra request fields (openai: only)


@dataclass
class Assertion:
    type: str
    value: object = None
    threshold: float | None = None
    weight: float = 1.0
    metric: str | None = None
    provider: str | None = None  # the grader of llm-rubric

    def to_dict(self) -> dict:
        out = {"type": self.type, "value": self.value, "threshold": self.threshold,
               "weight": self.weight if self.weight != 1.0 else None, "metric": self.metric,
               "provider": self.provider}
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Case:
    index: int
    description: str
    vars: dict
    asserts: list[Assertion]
    metadata: dict = field(default_factory=dict)
    threshold: float | None = None
    prefix: str = ""
    suffix: str = ""
    grader: str | None = None


@dataclass
class PromptfooSuite:
    path: Path
    description: str
    prompts: list[Prompt]
    providers: list[Provider]
    tests: list[Case]
    repeat: int = 1
    max_concurrency: int = 4
    raw: dict = field(default_factory=dict)


def load_promptfoo(path: Path) -> PromptfooSuite:
    """A promptfoo config; any problem is one InputError naming the file and the entry."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(_read(path))
    except yaml.YAMLError as e:
        raise InputError(f"{path}: invalid YAML ({yaml_problem(e)})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a promptfoo config is a YAML mapping")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise InputError(f"{path}: unsupported key(s) {', '.join(unknown)}; courselab reads "
                         f"{', '.join(sorted(KEYS))}")
    folder = path.parent
    where = str(path)
    prompts = _prompts(data.get("prompts"), folder, where)
    providers = [parse_provider(p, i, where) for i, p in enumerate(_list(data.get("providers"),
                                                                   "providers", where))]
    if not providers:
        raise InputError(f"{where}: providers: give at least one provider")
    default = data.get("defaultTest") or {}
    if not isinstance(default, dict):
        raise InputError(f"{where}: defaultTest must be a mapping")
    tests = _tests(data.get("tests"), default, folder, where)
    options = data.get("evaluateOptions") or {}
    repeat, concurrency = options.get("repeat", 1), options.get("maxConcurrency", 4)
    if not (isinstance(repeat, int) and 1 <= repeat <= 20):
        raise InputError(f"{where}: evaluateOptions.repeat is between 1 and 20")
    if not (isinstance(concurrency, int) and 1 <= concurrency <= 64):
        raise InputError(f"{where}: evaluateOptions.maxConcurrency is between 1 and 64")
    return PromptfooSuite(path, str(data.get("description") or ""), prompts, providers, tests,
                          repeat, concurrency, data)


# --- prompts ----------------------------------------------------------------------------------
def _prompts(value, folder: Path, where: str) -> list[Prompt]:
    out: list[Prompt] = []
    for i, entry in enumerate(_list(value, "prompts", where)):
        name = f"{where}: prompts[{i}]"
        label = None
        if isinstance(entry, dict) and "role" in entry:  # one chat message as a prompt
            entry = [entry]
        if isinstance(entry, dict):
            label, entry = entry.get("label"), entry.get("raw", entry.get("id"))
        if isinstance(entry, list):
            out.append(Prompt(label or f"prompt {i + 1}", json.dumps(entry),
                              _chat(entry, name)))
        elif isinstance(entry, str) and entry.startswith("file://"):
            out.extend(_prompt_file(entry, label, folder, name))
        elif isinstance(entry, str):
            out.append(Prompt(label or entry[:60], entry, [("user", _checked(entry, name))]))
        else:
            raise InputError(f"{name}: a prompt is a string, file:// path or a list of messages")
    if not out:
        raise InputError(f"{where}: prompts: give at least one prompt")
    return out


def _prompt_file(ref: str, label: str | None, folder: Path, name: str) -> list[Prompt]:
    path = _file(ref, folder, name)
    text = _read(path)
    if path.suffix in (".json", ".yaml", ".yml"):
        import yaml

        try:
            messages = yaml.safe_load(text)  # JSON is YAML
        except yaml.YAMLError as e:
            raise InputError(f"{name}: {path.name}: invalid YAML/JSON ({yaml_problem(e)})") \
                from None
        return [Prompt(label or path.name, text, _chat(messages, f"{name} ({path.name})"))]
    parts = [p.strip() for p in re.split(r"(?m)^---$", text) if p.strip()]
    return [Prompt(label or (path.name if len(parts) == 1 else f"{path.name}:{n + 1}"), part,
                   [("user", _checked(part, f"{name} ({path.name})"))])
            for n, part in enumerate(parts)]


def _chat(messages, name: str) -> list[tuple[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise InputError(f"{name}: a chat prompt is a list of {{role, content}} messages")
    out = []
    for m in messages:
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)):
            raise InputError(f"{name}: each message has a role (system, user, assistant) and a "
                             "text content")
        out.append((m["role"], _checked(m["content"], name)))
    return out


def _checked(text: str, name: str) -> str:
    """The text if its only template syntax is plain {{name}} fields."""
    rest = _FIELD.sub("", text)
    for token in ("{{", "}}", "{%", "%}", "{#"):
        if token in rest:
            at = rest.index(token)
            raise InputError(
                f"{name}: {rest[max(0, at - 10):at + 30]!r}: Nunjucks tags, filters and "
                "expressions are not supported (no code runs); use plain {{name}} fields")
    return text


# --- providers --------------------------------------------------------------------------------
PROVIDER_CONFIG = {"apiBaseUrl", "apiKey", "apiKeyEnvar", "temperature", "max_tokens", "top_p",
                   "seed", "stop", "passthrough"}


def parse_provider(entry, i: int, where: str) -> Provider:
    name = f"{where}: providers[{i}]"
    if isinstance(entry, str):
        entry = {"id": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise InputError(f"{name}: a provider is an id string or a mapping with `id`")
    ident, config = entry["id"], entry.get("config") or {}
    unknown = sorted(set(config) - PROVIDER_CONFIG)
    if unknown:
        raise InputError(f"{name} ({ident}): unsupported config key(s) {', '.join(unknown)}; "
                         f"courselab reads {', '.join(sorted(PROVIDER_CONFIG))}")
    options = {k: config[k] for k in ("temperature", "max_tokens", "top_p", "seed", "stop")
               if k in config}
    label = str(entry.get("label") or ident)
    if ident.startswith(("file://", "exec:", "python:", "http:", "https:", "webhook:")) or \
            ident.endswith(_CODE):
        raise InputError(f"{name}: provider {ident!r} runs code or calls an arbitrary URL; "
                         "use a courselab model, courselab/<template> or openai:chat:<model>")
    if ident.startswith("openai:") and "@" not in ident:
        model = ident.removeprefix("openai:").removeprefix("chat:")
        if not model or ident.startswith(("openai:completion:", "openai:embedding:")):
            raise InputError(f"{name}: {ident!r}: only openai:chat:<model> is supported")
        envar = config.get("apiKeyEnvar") or "OPENAI_API_KEY"
        if not isinstance(envar, str) or not re.fullmatch(r"[A-Za-z0-9_]*_API_KEY", envar):
            # subtle: the value is sent to apiBaseUrl: no config may read any other variable
            raise InputError(f"{name} ({ident}): apiKeyEnvar {str(envar)[:80]!r} must name a "
                             "variable ending in _API_KEY")
        key = config.get("apiKey") or os.environ.get(envar)
        url = config.get("apiBaseUrl") or os.environ.get("OPENAI_BASE_URL") or \
            "https://api.openai.com/v1"
        if not str(url).startswith(("http://", "https://")):
            raise InputError(f"{name}: apiBaseUrl must be an http(s) URL")
        passthrough = config.get("passthrough") or {}
        if not isinstance(passthrough, dict):
            raise InputError(f"{name}: passthrough is a mapping of request fields")
        return Provider(ident, label, f"openai:{model}", str(url).rstrip("/"), key, options,
                        passthrough)
    if "passthrough" in config:
        raise InputError(f"{name}: passthrough applies to openai:chat providers only")
    from assistant.models import get_spec

    if not ident.startswith("courselab/"):
        get_spec(ident)  # an unknown name fails now, with the choices
    return Provider(ident, label, ident, None, None, options)


# --- tests ------------------------------------------------------------------------------------
def _tests(value, default: dict, folder: Path, where: str) -> list[Case]:
    raw: list[dict] = []
    for entry in _list(value, "tests", where) if value is not None else []:
        if isinstance(entry, str) and entry.startswith("file://"):
            raw.extend(_test_file(entry, folder, where))
        elif isinstance(entry, dict):
            raw.append(entry)
        else:
            raise InputError(f"{where}: tests: each test is a mapping or a file:// path")
    if not raw:
        raw = [{}]  # promptfoo runs each prompt once with the default test
    cases: list[Case] = []
    for i, test in enumerate(raw):
        if not isinstance(test, dict):
            raise InputError(f"{where}: tests[{i}]: a test is a mapping (vars, assert, ...)")
        for expanded in _expand(_merge(default, test), f"{where}: tests[{i}]", folder):
            cases.append(_case(len(cases), expanded, f"{where}: tests[{i}]"))
            if len(cases) > MAX_TESTS:
                raise InputError(f"{where}: more than {MAX_TESTS} tests")
    return cases


def _merge(default: dict, test: dict) -> dict:
    merged = {**default, **test}
    merged["vars"] = {**(default.get("vars") or {}), **(test.get("vars") or {})}
    merged["assert"] = list(default.get("assert") or []) + list(test.get("assert") or [])
    merged["options"] = {**(default.get("options") or {}), **(test.get("options") or {})}
    merged["metadata"] = {**(default.get("metadata") or {}), **(test.get("metadata") or {})}
    return merged


TEST_KEYS = {"description", "vars", "assert", "options", "metadata", "threshold"}
TEST_OPTIONS = {"prefix", "suffix", "provider"}


def _expand(test: dict, name: str, folder: Path) -> list[dict]:
    """One test per combination of list-valued vars (promptfoo's matrix)."""
    unknown = sorted(set(test) - TEST_KEYS)
    if unknown:
        raise InputError(f"{name}: unsupported key(s) {', '.join(unknown)}")
    if not isinstance(test["vars"], dict):
        raise InputError(f"{name}: vars must be a mapping")
    variables = {k: _var(v, folder, f"{name}: vars.{k}") for k, v in test["vars"].items()}
    lists = {k: v for k, v in variables.items() if isinstance(v, list)}
    if not lists:
        return [{**test, "vars": variables}]
    combos = list(itertools.islice(itertools.product(*lists.values()), MAX_TESTS + 1))
    return [{**test, "vars": {**variables, **dict(zip(lists, combo))}} for combo in combos]


def _var(value, folder: Path, name: str):
    if isinstance(value, str) and value.startswith("file://"):
        path = _file(value, folder, name)
        if path.suffix in _CODE:
            raise InputError(f"{name}: {path.name}: a var from a script runs code; not supported")
        return _read(path)
    return value


def _case(index: int, test: dict, name: str) -> Case:
    options = test.get("options") or {}
    unknown = sorted(set(options) - TEST_OPTIONS)
    if unknown:
        raise InputError(f"{name}: options: unsupported key(s) {', '.join(unknown)} "
                         "(transforms run code)")
    grader = options.get("provider")
    if isinstance(grader, dict):
        grader = grader.get("id")
    asserts = [_assertion(a, f"{name}: assert[{j}]", grader)
               for j, a in enumerate(test.get("assert") or [])]
    threshold = test.get("threshold")
    return Case(index, str(test.get("description") or ""), test["vars"], asserts,
                dict(test.get("metadata") or {}),
                float(threshold) if threshold is not None else None,
                str(options.get("prefix") or ""), str(options.get("suffix") or ""), grader)


def _assertion(entry, name: str, grader: str | None) -> Assertion:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise InputError(f"{name}: an assertion is a mapping with a `type`")
    kind = entry["type"]
    base = kind.removeprefix("not-")
    if base in CODE_ASSERTIONS:
        raise InputError(f"{name}: assertion type {kind!r} runs code; not supported")
    if base not in ASSERTIONS:
        raise InputError(f"{name}: assertion type {kind!r} is not supported; supported: "
                         f"{', '.join(ASSERTIONS)} and their not- forms")
    extra = sorted(set(entry) - {"type", "value", "threshold", "weight", "metric", "provider"})
    if extra:
        raise InputError(f"{name}: unsupported key(s) {', '.join(extra)} (transforms run code)")
    value = entry.get("value")
    if isinstance(value, str) and value.startswith("file://"):
        raise InputError(f"{name}: a file:// value may be a script; give the value inline")
    if base == "latency" and entry.get("threshold") is None:
        raise InputError(f"{name}: latency needs a threshold (milliseconds)")
    if base == "regex":
        _check_js_regex(str(value), name)
    provider = entry.get("provider")
    provider = provider.get("id") if isinstance(provider, dict) else provider
    return Assertion(kind, value, _number(entry.get("threshold"), name),
                     _number(entry.get("weight", 1.0), name), entry.get("metric"),
                     provider or grader)


def _check_js_regex(pattern: str, name: str) -> None:
    """Refuse what JavaScript's RegExp would not read the same way (so both tools agree)."""
    if re.search(r"\(\?[a-zA-Z#]|\(\?P[<=]|\\[AZz]", pattern):
        raise InputError(f"{name}: regex {pattern[:60]!r} uses Python-only syntax (inline flags, "
                         "(?P<name>), \\A, \\Z); write it as a JavaScript pattern")


def _number(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name}: threshold and weight are numbers")
    return float(value)


def _test_file(ref: str, folder: Path, where: str) -> list[dict]:
    name = f"{where}: tests ({ref})"
    path = _file(ref, folder, name)
    if path.suffix not in (".csv", ".jsonl", ".yaml", ".yml", ".json"):
        raise InputError(f"{name}: tests come from .csv, .jsonl, .yaml or .json files")
    text = _read(path)
    if path.suffix == ".csv":
        return [_csv_test(row, f"{name} row {n}")
                for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2)]
    if path.suffix == ".jsonl":
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise InputError(f"{name}: line {e.lineno}: invalid JSON") from None
    if path.suffix in (".yaml", ".yml", ".json"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InputError(f"{name}: invalid YAML ({yaml_problem(e)})") from None
        return data if isinstance(data, list) else [data]


def _csv_test(row: dict, name: str) -> dict:
    test: dict = {"vars": {}, "assert": [], "metadata": {}}
    for column, value in row.items():
        if column is None:
            raise InputError(f"{name}: more cells than columns")
        if column.startswith("__expected"):
            if value:
                test["assert"].append(_expected(value, name))
        elif column == "__description":
            test["description"] = value
        elif column.startswith("__metadata:"):
            test["metadata"][column.removeprefix("__metadata:")] = value
        elif column.startswith("__"):
            raise InputError(f"{name}: unsupported column {column!r}")
        else:
            test["vars"][column] = value
    return test


def _expected(value: str, name: str) -> dict:
    """promptfoo's __expected cell: 'contains: x', 'not-icontains: x', 'grade: rubric', 'x'."""
    kind, sep, rest = value.partition(":")
    kind = kind.strip()
    if sep and kind in ("grade", "llm-rubric"):
        return {"type": "llm-rubric", "value": rest.strip()}
    if sep and kind in ("fn", "eval", "javascript", "python"):
        raise InputError(f"{name}: __expected {value[:40]!r} runs code; not supported")
    if sep and kind.removeprefix("not-") in ASSERTIONS:
        rest = rest.strip()
        if kind.removeprefix("not-").endswith(("-any", "-all")):
            return {"type": kind, "value": [v.strip() for v in rest.split(",") if v.strip()]}
        return {"type": kind, "value": rest}
    return {"type": "equals", "value": value}


# --- helpers ----------------------------------------------------------------------------------
def _list(value, key: str, where: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    if not isinstance(value, list):
        raise InputError(f"{where}: {key} must be a list")
    return value


def _file(ref: str, folder: Path, name: str) -> Path:
    target = ref.removeprefix("file://")
    if any(c in target for c in "*?[") or ":" in Path(target).name:
        raise InputError(f"{name}: {ref!r}: globs and function references are not supported")
    path = (folder / target).resolve() if not Path(target).is_absolute() else Path(target)
    if path.suffix in _CODE:
        raise InputError(f"{name}: {path.name} is a script; prompt functions run code and are "
                         "refused")
    return path


def _read(path: Path) -> str:
    return read_text(path, InputError, MAX_FILE_BYTES)


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)
