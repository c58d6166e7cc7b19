"""Load, validate and complete a ganrepro config.

The schema (settings.schema) says what a config may hold. This module turns its first
violation into one sentence that names the key and what is allowed, fills in the defaults,
and adds the checks JSON Schema cannot express (ascending kimg, min <= max, the ranges of
the hyper-parameters every run uses and the batch checks).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match

from ganrepro.errors import ConfigError
from ganrepro.settings import presets, studies
from ganrepro.settings.batch import check_batch
from ganrepro.settings.hparams import check_hparams
from ganrepro.settings.limits import SEED_MAX
from ganrepro.settings.registry import resolve_hparams
from ganrepro.settings.run import effective_run
from ganrepro.settings.schema import SCHEMA_DOC, dataset_schema, default, schema, source_names


def _validator(sub: dict[str, Any]) -> jsonschema.protocols.Validator:
    # A sub-schema carries the root's $defs along so its "#/$defs/..." refs resolve.
    root = schema()
    cls = jsonschema.validators.validator_for(root)
    return cls({**sub, "$schema": root["$schema"], "$defs": root["$defs"]})


# ---------------------------------------------------------------------------- messages

def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _allowed_keys(sub: dict[str, Any], instance: Any) -> list[str]:
    """Keys the schema `sub` accepts for `instance`, including matching if/then branches."""
    if "$ref" in sub:
        sub = schema()["$defs"][sub["$ref"].rsplit("/", 1)[-1]]
    keys = list(sub.get("properties", {}))
    for branch in sub.get("allOf", []):
        if "if" in branch and _validator(branch["if"]).is_valid(instance):
            keys += [k for k in branch["then"].get("properties", {}) if k not in keys]
    return keys


def _schema_at(path) -> dict[str, Any]:
    """The schema node describing the instance at `path` (best effort, for messages)."""
    node = schema()
    for part in path:
        if "$ref" in node:
            node = schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        if isinstance(part, int):
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        else:
            node = node.get("additionalProperties", {}) or {}
    if "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping",
               "null": "null"}


def _describe(error: ValidationError, prefix=()) -> str:
    path = list(prefix) + list(error.absolute_path)
    key = _key(path)
    got = json.dumps(error.instance, default=str)
    v = error.validator
    if v in ("additionalProperties", "unevaluatedProperties"):
        allowed = _allowed_keys(_schema_at(path), error.instance)
        extra = sorted(k for k in error.instance if k not in allowed)
        where = f"'{key}'" if path else "the top level"
        return (f"unknown config key {', '.join(repr(_key(path + [k])) for k in extra)}; "
                f"allowed keys in {where}: {', '.join(allowed)}")
    if "propertyNames" in error.absolute_schema_path and v == "enum":
        allowed = ", ".join(json.dumps(x) for x in error.validator_value)
        return f"config key '{_key(path + [error.instance])}' is not allowed; allowed keys in '{key}': {allowed}"
    if "propertyNames" in error.absolute_schema_path:
        return (f"name {got} in '{key}' is not allowed: use lower-case letters, digits, "
                "'-' and '_', starting with a letter or digit (at most 64 characters)")
    if v == "enum":
        allowed = ", ".join(json.dumps(x) for x in error.validator_value)
        return f"config key '{key}' is {got}; allowed values: {allowed}"
    if v == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"config key '{key}' must be {' or '.join(_TYPE_WORDS.get(t, t) for t in types)} (got {got})"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        return f"config key '{key}' must be {op} {error.validator_value} (got {got})"
    if v == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"config key '{key}' is missing required key(s): {', '.join(missing)}"
    if v == "uniqueItems":
        return f"config key '{key}' must not repeat values (got {got})"
    if v in ("minItems", "minProperties"):
        return f"config key '{key}' must not be empty"
    if v == "maxProperties" and error.validator_value == 1:
        return (f"config key '{key}' must name exactly one thing to vary (got {', '.join(map(repr, error.instance))}); "
                "a study varies one key, so split it into one study per key")
    if v == "maxItems":
        return f"config key '{key}' must have at most {error.validator_value} entries (got {len(error.instance)})"
    if v == "pattern" and key.endswith(".url"):
        return f"config key '{key}' must be an http, https or file URL (got {got})"
    if v == "pattern" and "sha256" in key:
        return f"config key '{key}' must be 64 lower-case hexadecimal digits (got {got})"
    return f"config key '{key}': {error.message}"


def _validate(instance: Any, sub: dict[str, Any], prefix=()) -> None:
    error = best_match(_validator(sub).iter_errors(instance), key=_relevance)
    if error is not None:
        raise ConfigError(_describe(error, prefix))


def _relevance(error: ValidationError):
    # Prefer the deepest error, then the one best_match would pick anyway.
    return (len(error.absolute_path),) + jsonschema.exceptions.relevance(error)


# ---------------------------------------------------------------------------- defaults

def _fill_defaults(sub: dict[str, Any], instance: Any) -> None:
    if "$ref" in sub:
        sub = schema()["$defs"][sub["$ref"].rsplit("/", 1)[-1]]
    if not isinstance(instance, dict):
        return
    props = sub.get("properties", {})
    for key, prop in props.items():
        if key not in instance and "default" in prop:
            instance[key] = copy.deepcopy(prop["default"])
        if key in instance:
            _fill_defaults(prop, instance[key])
    extra = sub.get("additionalProperties")
    if isinstance(extra, dict):
        for key in instance:
            if key not in props:
                _fill_defaults(extra, instance[key])
    for branch in sub.get("allOf", []):
        if "if" in branch and _validator(branch["if"]).is_valid(instance):
            _fill_defaults(branch["then"], instance)


# ---------------------------------------------------------------------------- checks beyond the schema

def _check_dataset(name: str, spec: dict[str, Any]) -> None:
    if spec["source"] == "shapes" and spec["min_objects"] > spec["max_objects"]:
        raise ConfigError(
            f"config key 'datasets.{name}.min_objects' ({spec['min_objects']}) must not "
            f"exceed 'datasets.{name}.max_objects' ({spec['max_objects']})")
    # The dataset's recipe keys obey the top-level train's types and ranges.
    _validate(spec.get("train", {}), schema()["properties"]["train"], prefix=("datasets", name, "train"))


def _check_pretrained(name: str, spec: dict[str, Any], datasets: dict[str, Any]) -> None:
    key = f"config key 'pretrained.{name}"
    if ("url" in spec) == ("path" in spec):
        raise ConfigError(f"{key}' needs exactly one of 'url' (to download) and 'path' (a local file)")
    if spec["dataset"] not in datasets:
        raise ConfigError(f"{key}.dataset' is {json.dumps(spec['dataset'])}; allowed: a name under "
                          f"'datasets' ({', '.join(datasets)})")
    res = datasets[spec["dataset"]]["resolution"]
    if spec["resolution"] is not None and spec["resolution"] != res:
        raise ConfigError(f"{key}.resolution' ({spec['resolution']}) differs from dataset "
                          f"'{spec['dataset']}' ({res} px); a checkpoint is measured at its dataset's resolution")


def _check(cfg: dict[str, Any]) -> None:
    kimg = cfg["kimg"]
    last_seed = cfg["metrics"]["seed"] + cfg["metrics"]["repeats"] - 1
    if last_seed > SEED_MAX:
        raise ConfigError(f"config keys 'metrics.seed' ({cfg['metrics']['seed']}) and 'metrics.repeats' "
                          f"({cfg['metrics']['repeats']}) reach sampling seed {last_seed}; seeds go up to "
                          f"{SEED_MAX}")
    if any(b <= a for a, b in zip(kimg, kimg[1:])):
        raise ConfigError(f"config key 'kimg' must be strictly ascending (got {kimg}), "
                          f"e.g. {sorted(set(kimg))}")
    for name, spec in cfg["datasets"].items():
        _check_dataset(name, spec)
    for name, spec in cfg["pretrained"].items():
        _check_pretrained(name, spec, cfg["datasets"])
    for model in [*cfg["models"], *(m for m in cfg["hparams"] if m not in cfg["models"])]:
        _check_hparams(model, cfg["hparams"].get(model, {}), "hparams")
    # What each dataset's runs use: the top level, its preset and its own overrides.
    for name, spec in cfg["datasets"].items():
        train, hparams = presets.effective(cfg, name)
        own = name if (spec.get("hparams") or presets.PRESETS[presets.preset_of(spec)]["hparams"]) else None
        full = {model: _check_run(cfg, name, model,
                                  f"datasets.{name}.hparams" if own and model in hparams else "hparams")
                for model in dict.fromkeys([*cfg["models"], *hparams])}
        overridden = spec.get("train") or spec.get("hparams") or presets.preset_of(spec) != "none"
        where = f" (dataset '{name}')" if len(cfg["datasets"]) > 1 or overridden else ""
        try:
            check_batch(train["batch_size"], cfg["kimg"],
                        {model: full[model]["mbstd_group"] for model in cfg["models"]})
        except ConfigError as err:
            raise ConfigError(f"{err}{where}") from None
    # Each study point is a config of its own runs (settings.studies), checked like the whole.
    for point in studies.expand(cfg):
        try:
            _check(point.config)
        except ConfigError as err:
            message = str(err)
            # The point's value sits in its dataset entry's hparams: name it where the config sets it.
            for model in point.models:
                for name in studies.updates(point.vary, point.value):
                    message = message.replace(f"'datasets.{point.dataset}.hparams.{model}.{name}'",
                                              f"'studies.{point.study}.vary.{point.vary}[{point.index}]' ({model}.{name})")
            raise ConfigError(f"study '{point.study}' at {point.vary} = {point.label}: {message}") from None


def _refuse_size_keys(model: str, hparams: dict[str, Any], prefix: str) -> None:
    fixed = sorted({"resolution", "channels"} & set(hparams))
    if fixed:
        raise ConfigError(f"config key '{prefix}.{model}.{fixed[0]}' cannot be set: it comes "
                          "from the dataset (datasets.NAME.resolution / channels)")


def _check_hparams(model: str, hparams: dict[str, Any], prefix: str) -> None:
    """The hyper-parameters the config sets at `prefix` for `model`, with its defaults
    filled in, checked against their ranges."""
    _refuse_size_keys(model, hparams, prefix)
    try:
        full = dataclasses.asdict(resolve_hparams(model, **hparams))
    except ConfigError as err:
        raise ConfigError(f"config key '{prefix}.{model}': {err}") from None
    check_hparams(model, full, {}, prefix)


def _check_run(cfg: dict[str, Any], dataset: str, model: str, prefix: str) -> dict[str, Any]:
    """Every hyper-parameter a run of `model` on `dataset` uses, checked against its range
    at the dataset's size; `prefix` is where the config sets them."""
    _refuse_size_keys(model, presets.effective(cfg, dataset)[1].get(model, {}), prefix)
    try:
        full = effective_run(cfg, dataset, model).hparams
    except ConfigError as err:
        raise ConfigError(f"config key '{prefix}.{model}': {err}") from None
    check_hparams(model, full, {dataset: cfg["datasets"][dataset]["resolution"]}, prefix)
    return full


# ---------------------------------------------------------------------------- public API

# A config is a few hundred values; YAML anchors let a small file stand for a huge tree
# (every alias a shared reference that validation would walk again), so the tree is
# measured, with each alias counted in full, before anything walks it.
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_DEPTH = 64
MAX_CONFIG_BYTES = 1 << 20


def _check_shape(cfg: Any) -> None:
    """Refuse a config tree with more than MAX_CONFIG_VALUES values (aliases expanded),
    deeper than MAX_CONFIG_DEPTH (a recursive alias is infinitely deep), or holding a
    non-finite number; linear in the file's size whatever its aliases."""
    sizes: dict[int, int] = {}

    def size(node: Any, path: tuple, depth: int) -> int:
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"config key '{_key(path[:8])}...' nests more than {MAX_CONFIG_DEPTH} levels "
                              "deep (a recursive YAML alias?); a ganrepro config is a few levels deep")
        if isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"config key '{_key(path)}' must be a finite number (got {node})")
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        items = node.items() if isinstance(node, dict) else enumerate(node)
        total = 1
        for key, value in items:
            total += size(value, (*path, key), depth + 1)
            if total > MAX_CONFIG_VALUES:
                raise ConfigError(f"config key '{_key(path)}' stands for more than "
                                  f"{MAX_CONFIG_VALUES:,} values once its YAML aliases are expanded; "
                                  "a ganrepro config has a few hundred")
        sizes[id(node)] = total
        return total

    size(cfg, (), 0)


def resolve(cfg: Any, origin: str | None = None) -> dict[str, Any]:
    """Validate `cfg`, fill in defaults, run the extra checks; return a new dict.

    Raises ConfigError with one sentence naming the key (and `origin`, the file, if given).
    """
    try:
        if not isinstance(cfg, dict):
            raise ConfigError("a config must be a mapping of keys to values "
                              f"(got {type(cfg).__name__})")
        _check_shape(cfg)
        if "seed" in cfg:
            raise ConfigError("config key 'seed' was split in two: 'seeds' (the training seeds, a list such as "
                              "[0, 1, 2]) and 'metrics.seed' (the sampling seed of the evaluation)")
        _validate(cfg, schema())
        out = copy.deepcopy(cfg)
        _fill_defaults(schema(), out)
        _check(out)
    except ConfigError as err:
        if origin:
            raise ConfigError(f"{origin}: {err} (schema: {SCHEMA_DOC})") from None
        raise ConfigError(f"{err} (schema: {SCHEMA_DOC})") from None
    return out


def resolve_dataset(name: str, spec: Any) -> dict[str, Any]:
    """Validate and complete one dataset entry (as found under `datasets.<name>`)."""
    try:
        if not isinstance(spec, dict):
            raise ConfigError(f"config key 'datasets.{name}' must be a mapping with at "
                              f"least a 'source' key (got {json.dumps(spec, default=str)})")
        _check_shape({"datasets": {name: spec}})
        _validate(spec, dataset_schema(), prefix=("datasets", name))
        out = copy.deepcopy(spec)
        _fill_defaults(dataset_schema(), out)
        _check_dataset(name, out)
    except ConfigError as err:
        raise ConfigError(f"{err} (schema: {SCHEMA_DOC})") from None
    return out


def parse_json(text: str, option: str) -> Any:
    """JSON given on the command line (`option` names it), as one clear error when broken."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option} is not valid JSON ({err})") from None
    except RecursionError:
        raise ConfigError(f"{option} nests deeper than JSON can be read here; a config is a few levels deep") from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error names the file and line."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is {path.stat().st_size:,} bytes; a config is at most "
                              f"{MAX_CONFIG_BYTES:,} (is it the right file?)")
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}); a config is YAML") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None


def load(path: str | Path) -> dict[str, Any]:
    """Read, validate and complete a config file."""
    return resolve(read_yaml(path), origin=str(path))


def parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set KEY=VALUE` pairs as a dict, each value read as YAML."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r} must look like KEY=VALUE, e.g. --set resolution=64")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {pair!r}: its value is not valid YAML ({' '.join(str(err).split())})") from None
    return out


def dataset_entry(name: str, config_path: str | None, spec_json: str | None, sets: tuple[str, ...],
                  default_config: str) -> tuple[dict[str, Any], str]:
    """The resolved entry of dataset `name` and the cache dir, from --spec (JSON), from the
    `datasets` of a config, or, for a bare source name, the source's defaults; `sets` are
    --set KEY=VALUE overrides."""
    overrides = parse_sets(sets)
    if spec_json is not None:
        raw = parse_json(spec_json, "--spec")
        if not isinstance(raw, dict):
            raise ConfigError(f"--spec must be a JSON object such as '{{\"source\": \"shapes\"}}' (got {spec_json})")
        return resolve_dataset(name, {**raw, **overrides}), default("cache_dir")
    path = config_path or default_config
    # Without --config, a missing default config is fine for a bare source name.
    cfg = None if config_path is None and not Path(path).exists() else load(path)
    defined = cfg["datasets"] if cfg else {}
    if name in defined:
        raw = defined[name]
    elif name in source_names():
        raw = {"source": name}
    else:
        where = f"defined in {path} (it defines: {', '.join(defined)})" if cfg else f"defined ({path} does not exist)"
        raise ConfigError(f"dataset {name!r} is neither {where} nor a source name "
                          f"({', '.join(source_names())})")
    cache_dir = cfg["cache_dir"] if cfg else default("cache_dir")
    return resolve_dataset(name, {**raw, **overrides}), cache_dir
