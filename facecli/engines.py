"""The Ray engine: the parts of a streamed run (:mod:`facecli.batch`) mapped by Ray Data actors.

Each actor holds one model session (loaded once, when the actor starts) and runs the same job as the local
engine (:mod:`facecli.jobs`): decode, restore, detect, model and postprocess all happen in the map stage,
on whichever node the actor lives. The job (and, for ``match``, its gallery) is put into Ray's object
store once per window of parts and handed to every actor. Results come back in input order and the
driver writes them as the local engine does, so the output files are the same.

Without an address a local Ray instance is started (and stopped at the end); ``address`` joins a running
cluster (``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the others).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facecli.errors import FacecliError
from facecli.inputs import Named
from facecli.options import RunOptions

WINDOW = 64  # parts per Ray Data execution: bounds the driver's memory; actors restart once per window


def require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise FacecliError("--engine ray needs Ray: pip install 'facecli[ray]'") from None
    return ray


class PartWorker:
    """A Ray Data actor: loads the job's models once, then runs the job on one part per call. The part's
    table and summary rows travel back through Ray's own object transport."""

    def __init__(self, job: Any) -> None:
        import ray

        self.job = (ray.get(job) if isinstance(job, ray.ObjectRef) else job).load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from facecli.scan import Unlisted

        ks, tables, rows = [], [], []
        for k, paths, names, errors in zip(batch["k"], batch["paths"], batch["names"], batch["errors"], strict=True):
            part = [Named(Unlisted(_path(p), e) if e else _path(p), n)
                    for p, n, e in zip(paths, names, errors, strict=True)]
            table, summary = self.job(part)
            ks.append(int(k))
            tables.append(table)
            rows.append(summary)
        return {"k": np.array(ks), "table": _objects(tables), "rows": _objects(rows)}


def _path(p: object) -> Path:
    """A path as it crossed Ray Data (bytes from os.fsencode; text also accepted)."""
    return Path(os.fsdecode(p) if isinstance(p, bytes | bytearray | np.bytes_) else str(p))


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class RayMapper:
    """A :data:`facecli.batch.Mapper` that runs ``job`` on Ray Data actors (see the module docstring). It joins
    the cluster (or starts a local instance) when made, so a cluster that cannot be reached is an error before
    any output is touched; :meth:`close` stops a local instance it started."""

    def __init__(self, job: Any, options: RunOptions) -> None:
        self.ray = require_ray()
        # one CPU an actor: one ONNX Runtime thread and one decoding thread each, unless told otherwise
        opts = job.options
        self.job = dataclasses.replace(job, options=RunOptions.of(opts, threads=opts.threads or 1,
                                                                  workers=opts.workers or 1))
        self.options = options
        self.started = _connect(self.ray, options.address)

    def __call__(self, todo: Iterable[tuple[int, list[Named]]]) -> Iterator[tuple[int, pd.DataFrame, list]]:
        ray = self.ray
        it = iter(todo)
        while True:
            window = list(islice(it, WINDOW))
            if not window:
                return
            try:
                yield from _run_window(ray, self.job, window, self.options)
            except ray.exceptions.RayError as exc:
                lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                raise FacecliError(f"the Ray engine failed: {lines[-1].strip() if lines else type(exc).__name__}"
                                   " (the parts written so far are kept: --resume continues)") from None

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False


def ray_mapper(job: Any, options: RunOptions) -> RayMapper:
    """The Ray engine's mapper for ``job`` (connected; close it when the run ends)."""
    return RayMapper(job, options)


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address`` (or start a local instance); True when this call started Ray."""
    if ray.is_initialized():
        return False
    if address:
        reachable(address)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    quiet_ray_logs()
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
        raise FacecliError(f"cannot {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    return True


def quiet_ray_logs() -> None:
    """Keep Ray's own log lines (its token notice, Ray Data's execution plan and progress notes, a stopped
    dataset's error on Ctrl-C) off facecli's terminal: facecli prints its own progress and one-line errors, and
    Ray keeps every line in its session logs (``/tmp/ray/session_latest/logs``)."""
    import logging

    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def reachable(address: str, timeout: float = 10.0) -> None:
    """FacecliError, within ``timeout`` seconds, when nothing accepts a connection at a ``host:port`` address
    (Ray itself would retry for minutes); other forms ("auto") are left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise FacecliError(f"cannot join the Ray cluster at {address}: nothing answers there "
                           f"({exc.strerror or exc}); is 'ray start --head' running?") from None


def actor_resources(cluster: dict[str, float], device: str, parts: int) -> tuple[int, dict[str, float]]:
    """How many actors a window of ``parts`` parts gets, and what each reserves, on a cluster with
    ``cluster`` resources (Ray's ``cluster_resources()``).

    Every actor takes one CPU: it decodes, restores and detects there (one decoding thread, one ONNX Runtime
    thread). With ``device`` "cuda", or "auto" on a cluster that has GPUs, each also reserves an equal share of
    the GPUs: as many actors per GPU as the cluster has CPUs per GPU (16 cores and one GPU: 16 actors at 1/16 of
    it), so every core feeds the GPU and Ray never puts more actors on a GPU than that. The models then run on
    the GPU (the float files: :func:`facecli.runtime.shipped_model_path`). FacecliError for "cuda" on a cluster
    without a GPU.
    """
    cpus = max(1, int(cluster.get("CPU", 1)))
    gpus = float(cluster.get("GPU", 0))
    if device == "cuda" and gpus <= 0:
        raise FacecliError("--device cuda: the Ray cluster has no GPU (ray.cluster_resources() lists none)")
    actors = max(1, min(cpus, parts))
    if device == "cpu" or gpus <= 0:
        return actors, {"num_cpus": 1}
    per_gpu = max(1, cpus // max(1, int(gpus)))
    return actors, {"num_cpus": 1, "num_gpus": 1.0 / per_gpu}


def _run_window(ray: Any, job: Any, window: list[tuple[int, list[Named]]],
                options: RunOptions) -> Iterator[tuple[int, pd.DataFrame, list]]:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # rows come back in input order
    ctx.enable_progress_bars = False
    actors, resources = actor_resources(ray.cluster_resources(), options.device, len(window))
    # paths travel as bytes: a name that is not UTF-8 (kept by Python as surrogates) crosses Arrow intact and silently
    items = [{"k": k, "paths": [os.fsencode(n.item) for n in part], "names": [n.name for n in part],
              "errors": [getattr(n.item, "error", "") for n in part]} for k, part in window]
    ref = ray.put(job)  # the job (and a match's gallery) goes into the object store once
    # a fixed pool of actors (Ray 2.51 and later: compute, not the deprecated concurrency); no actor restarts
    # (with restarts, Ray logs an error line for constructor arguments kept in the object store): a lost actor
    # fails the window, and --resume continues from the parts already written. Ray files max_restarts under
    # its deprecated ray_remote_args and warns about it, though it is the named parameter it asks for.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            PartWorker, fn_constructor_args=(ref,), batch_size=1, compute=ray.data.ActorPoolStrategy(size=actors),
            **resources, max_restarts=0, batch_format="numpy")
    sizes = {k: len(part) for k, part in window}
    for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
        for k, table, rows in zip(batch["k"], batch["table"], batch["rows"], strict=True):
            options.advance(sizes[int(k)])
            yield int(k), table, [tuple(r) for r in rows]
