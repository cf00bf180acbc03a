"""A task's data: its published file format read from --data, or its Hugging Face dataset;
the readers task modules share (JSON Lines, UTF-8 text) and the hashes a report records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ..errors import EvalDataError
from ..fsutil import sha256_file
from .types import Task, TaskData


def file_hash(path: Path) -> str:
    return "sha256:" + sha256_file(path)


def docs_hash(docs: Sequence[dict]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps(d, sort_keys=True, ensure_ascii=False).encode())
    return "sha256:" + h.hexdigest()


def check_data_source(task: Task, data: str | Path | None) -> None:
    """Refuse, before any model loads, a data source that cannot work: a --data path that is
    missing or not a file, a task with no hub dataset and no --data, no `datasets` package, or
    a hub that cannot be reached (one quick try, not huggingface_hub's half a minute of retries)."""
    if data is not None:
        path = Path(data).expanduser()
        if not path.exists():
            raise EvalDataError(f"{path}: no such data file; pass --data PATH ({task.data_format})")
        if path.is_dir():
            raise EvalDataError(f"{path}: a directory; pass the data file itself ({task.data_format})")
        return
    if task.hf is None:
        raise EvalDataError(f"task {task.name} needs --data PATH ({task.data_format})")
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise EvalDataError(
            f"task {task.name}: no --data given and the `datasets` package is not installed; "
            f"pass --data PATH ({task.data_format}) or pip install datasets"
        ) from None
    if _hub_offline() is None and not _hub_reachable():
        from huggingface_hub import constants

        raise EvalDataError(f"task {task.name}: no --data given and the Hugging Face hub "
                            f"({constants.ENDPOINT}) cannot be reached; pass --data PATH ({task.data_format})")


def _hub_offline() -> str | None:
    """The variable that puts the hub offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE), if one does."""
    import os

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return name
    return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within `timeout` seconds. With a
    proxy configured the answer is left to huggingface_hub (a direct connection proves nothing)."""
    import os
    import socket
    import threading
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if not host:
        return True
    ok: list[bool] = []

    def attempt() -> None:  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(ok)


def load_docs(task: Task, data: str | Path | None) -> TaskData:
    """The task's documents from a local file (data) or its Hugging Face dataset."""
    check_data_source(task, data)
    if data is not None:
        path = Path(data).expanduser()
        docs = task.read(path)
        if not docs:
            raise EvalDataError(f"{path}: no examples in the file ({task.data_format})")
        return TaskData(task.name, docs, str(path), file_hash(path))
    import datasets

    hf_path, hf_name, split = task.hf
    try:
        ds = datasets.load_dataset(hf_path, hf_name, split=split)
    except Exception as e:  # network, missing dataset, offline mode
        offline = _hub_offline()
        if offline:  # only the local cache was tried
            raise EvalDataError(f"task {task.name}: {hf_path} is not in the local Hugging Face cache and "
                                f"{offline} is set; pass --data PATH ({task.data_format})") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EvalDataError(
            f"task {task.name}: cannot load {hf_path} from the Hugging Face hub ({first}); "
            f"pass --data PATH ({task.data_format})"
        ) from None
    convert = task.from_hf or (lambda r: dict(r))
    docs = [convert(dict(r)) for r in ds]
    source = f"hf:{hf_path}" + (f"/{hf_name}" if hf_name else "") + f":{split}"
    return TaskData(task.name, docs, source, docs_hash(docs))


def read_jsonl(path: Path, required: Sequence[str] = ()) -> list[dict]:
    """Records of a JSON Lines file; each must be an object holding the `required` keys."""
    docs = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as e:
                    raise EvalDataError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove the line") from None
                if not isinstance(doc, dict):
                    raise EvalDataError(f"{path}:{lineno}: expected a JSON object per line")
                missing = [k for k in required if k not in doc]
                if missing:
                    raise EvalDataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
                docs.append(doc)
    except UnicodeDecodeError:
        raise EvalDataError(f"{path}: not UTF-8 text") from None
    return docs


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EvalDataError(f"{path}: not UTF-8 text") from None
