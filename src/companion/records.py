"""Run records: one JSON file per run, named by the hash of the run's frozen config.

A run is a pure function of its config, so a record is found again from the config alone:
`results/<experiment>/<config hash>.json`. What makes a record trustworthy:

- it is used only if its stored config equals the requested one (after the normalisation
  that makes the hash) and, for records of schema 2 on, its `record_sha256` matches its
  content; anything else (a copy under another config's name, an edited or truncated file,
  NaN in the JSON) is named by path, moved to `<experiment>/quarantine/` (never deleted) and
  run again by a sweep, or left out by the readers;
- it carries its schema version and its provenance (`provenance.record_provenance`): code
  commit, a fingerprint of the code that computes runs, torch and Python versions, threads,
  device;
- it is written atomically through a temporary `.<hash>.*.partial` file (never `*.json`), and
  NaN or infinity never reach it (`allow_nan=False`);
- a sweep (`scheduling.run_sweep`) takes a per-run lock (`filelock`), so concurrent sweeps
  and cluster workers share the work instead of duplicating it.

Records without `schema_version` are schema 1 (written before these checks) and are read
unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from companion.data.sources import REPO_ROOT
from companion.provenance import FINGERPRINT_VERSION, code_fingerprint, record_provenance

SCHEMA_VERSION = 2
DIGEST_FIELD = "record_sha256"
QUARANTINE = "quarantine"


class RecordError(ValueError):
    """A record file that cannot be used; the message names the file and says why."""


class RecordWarning(UserWarning):
    """A record was left out or moved aside (the message names it)."""


def results_dir() -> Path:
    """`$COMPANION_RESULTS_DIR` or `<repo>/results`."""
    return Path(os.environ.get("COMPANION_RESULTS_DIR", REPO_ROOT / "results"))


def config_dict(config: Any) -> dict[str, Any]:
    """The config's fields as a dict (a dataclass or a record's config), leaving out None.

    Leaving out None lets a later version add optional fields (default None) without
    changing the hash, and so the file name, of records written before.
    """
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {k: v for k, v in values.items() if v is not None}


def normalised_config(config: Any) -> dict[str, Any]:
    """The config as it reads back from a record (tuples become lists): what records store."""
    return json.loads(json.dumps(config_dict(config)))


def config_hash(config: Any) -> str:
    """First 16 hex digits of the sha256 of the config's canonical JSON."""
    text = json.dumps(config_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pack_bits(flags: np.ndarray) -> str:
    """A boolean vector as base64 text, one bit per entry (10,000 flags: 1,668 characters)."""
    return base64.b64encode(np.packbits(np.asarray(flags, dtype=bool)).tobytes()).decode()


def unpack_bits(text: str, count: int) -> np.ndarray:
    """The `count` flags of `pack_bits` text; a ValueError when the text holds fewer."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text, validate=True), dtype=np.uint8))
    if len(bits) < count or bits[count:].any():
        raise ValueError(f"packed flags hold {len(bits)} bits, not {count}")
    return bits[:count].astype(bool)


def record_path(experiment: str, config: Any) -> Path:
    return results_dir() / experiment / f"{config_hash(config)}.json"


# ---- writing --------------------------------------------------------------------------------

def _non_finite(value: Any, where: str = "") -> str | None:
    """The path of the first NaN or infinity inside `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(the value)"
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (found := _non_finite(item, f"{where}.{key}" if where else str(key))) is not None:
            return found
    return None


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to `path` through a temporary file in the same directory and a rename.

    The temporary file is `.<name>.<random>.partial`, which no `*.json` pattern matches.
    NaN and infinity are refused with a ValueError naming the file and the field.
    """
    if (where := _non_finite(payload)) is not None:
        raise ValueError(f"{path}: not written, {where} is NaN or infinite (JSON allows "
                         "neither); store None for a value that does not exist")
    text = json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                         suffix=".partial")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def record_digest(record: Mapping[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its own digest field."""
    content = {k: v for k, v in record.items() if k != DIGEST_FIELD}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def store_record(path: Path, record: dict[str, Any], experiment: str) -> dict[str, Any]:
    """Add provenance (fields the run set itself are kept) and the digest; write; return it."""
    stamped = {**record_provenance(experiment, str(record.get("device", "cpu"))), **record}
    stamped["schema_version"] = SCHEMA_VERSION
    stamped["code_fingerprint"] = code_fingerprint(experiment)
    stamped["code_fingerprint_version"] = FINGERPRINT_VERSION
    stamped = json.loads(json.dumps(stamped))  # as it reads back (tuples become lists)
    stamped[DIGEST_FIELD] = record_digest(stamped)
    write_json_atomic(path, stamped)
    return stamped


# ---- reading --------------------------------------------------------------------------------

def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_record(path: Path, config: Any = None) -> dict[str, Any]:
    """The record at `path`, checked; `RecordError` naming the file when it cannot be used.

    Checked: valid JSON (no NaN), an object with a `config`, a schema this code knows, the
    digest (schema 2 on), and that its config is `config` (or, without `config`, that its
    config hashes to the file's name).
    """
    try:
        record = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RecordError(f"{path}: unreadable record ({error})") from error
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise RecordError(f"{path}: not a run record (no 'config' object)")
    schema = record.get("schema_version", 1)
    if not isinstance(schema, int) or not 1 <= schema <= SCHEMA_VERSION:
        raise RecordError(f"{path}: schema_version {schema!r}; this code reads 1 to "
                          f"{SCHEMA_VERSION} (update the code to read newer records)")
    if schema >= 2 and record.get(DIGEST_FIELD) != record_digest(record):
        raise RecordError(f"{path}: edited after it was written ({DIGEST_FIELD} does not "
                          "match its content)")
    if config is not None:
        if record["config"] != normalised_config(config):
            raise RecordError(f"{path}: foreign record, its config is not the requested one "
                              f"(it belongs to {config_hash(record['config'])}.json)")
    elif config_hash(record["config"]) != path.stem:
        raise RecordError(f"{path}: foreign record, its config hashes to "
                          f"{config_hash(record['config'])}, not to its file name")
    return record


def quarantine(path: Path, reason: str) -> Path:
    """Move `path` to `<its folder>/quarantine/` (never deleted) and warn; the new path."""
    folder = path.parent / QUARANTINE
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.bad"
    os.replace(path, target)
    warnings.warn(f"{reason}; moved to {target}", RecordWarning, stacklevel=2)
    return target


def usable(path: Path, config: Any = None, move_aside: bool = False) -> dict[str, Any] | None:
    """The record at `path` if it exists and can be used; else None (warned, maybe moved)."""
    if not path.is_file():
        return None
    try:
        return read_record(path, config)
    except RecordError as error:
        if move_aside:
            quarantine(path, str(error))
        else:
            warnings.warn(f"{error}; left out", RecordWarning, stacklevel=3)
        return None


def load_records(experiment: str) -> list[dict[str, Any]]:
    """Every usable record of an experiment (empty when none ran yet); bad ones are named."""
    folder = results_dir() / experiment
    found = (usable(path) for path in sorted(folder.glob("*.json")))
    return [record for record in found if record is not None]


def recorded(experiment: str, configs: Iterable[Any]) -> list[dict[str, Any]]:
    """The usable records of those `configs` that have run, in order; runs nothing."""
    found = (usable(record_path(experiment, config), config) for config in configs)
    return [record for record in found if record is not None]
