"""Reading this process's environment into a run's reproducibility record (``RunEnvironment``).

Capturing never fails a run: each part that cannot be read is left empty (a
working tree without git reads "not a git repository"). It is fast: one or two
``git`` calls, and what cannot change while a process lives (the installed
packages, the CPU and memory) is read once per process. Seeds set through
:func:`seed_everything` are remembered for the runs this process starts.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
import random
import re
import socket
import subprocess
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from weightbase.errors import ValidationError
from weightbase.tracking.environment import GitState, Gpu, Hardware, RunEnvironment, check_seed

__all__ = [
    "CAPTURE_VARIABLE",
    "REDACTED",
    "capture_environment",
    "capture_wanted",
    "environment_to_record",
    "installed_packages",
    "normalised_name",
    "process_seeds",
    "forget_open_run",
    "redact_argv",
    "remember_open_run",
    "seed_everything",
    "seed_process",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Set to ``0`` (or ``false``, ``no``, ``off``) to record no run's environment in this process.
CAPTURE_VARIABLE = "WEIGHTBASE_CAPTURE_ENVIRONMENT"
#: What a secret argument's value is recorded as.
REDACTED = "<redacted>"
#: How long one ``git`` call may take before the working tree is recorded as unknown.
GIT_TIMEOUT_S = 2.0

# An argument whose name says it holds a secret: its value is never recorded.
_SECRET_NAME = re.compile(r"token|password|passwd|secret|key", re.IGNORECASE)
# user:password@ in a URL given as an argument
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")

# Seeds set through seed_everything in this process: every run started afterwards records them.
_seeds: dict[str, int] = {}


class _OpenRun(Protocol):
    """A run handle open in this process: ``seed_everything`` records its seeds on it."""

    id: int

    def _record_seeds(self, seeds: Mapping[str, int]) -> None: ...


_open_runs: weakref.WeakSet[_OpenRun] = weakref.WeakSet()


def capture_wanted(capture: bool) -> bool:
    """Whether to capture: ``capture``, unless ``WEIGHTBASE_CAPTURE_ENVIRONMENT`` turns it off."""
    setting = os.environ.get(CAPTURE_VARIABLE, "").strip().lower()
    return capture and setting not in ("0", "false", "no", "off")


def environment_to_record(capture: bool | RunEnvironment) -> RunEnvironment | None:
    """What a new run records for ``capture_environment=capture``.

    ``True``: this process's environment (unless ``WEIGHTBASE_CAPTURE_ENVIRONMENT``
    turns it off); ``False``: nothing but the seeds set through
    :func:`seed_everything`, if any; a record: that record (one captured elsewhere,
    such as by a remote client).
    """
    if isinstance(capture, RunEnvironment):
        # redacted again: a record sent by some other client may not have been
        return dataclasses.replace(capture, argv=redact_argv(capture.argv))
    if not isinstance(capture, bool):
        raise ValidationError(
            f"capture_environment is True, False or a RunEnvironment, not {capture!r}"
        )
    if capture_wanted(capture):
        return capture_environment()
    return RunEnvironment(seeds=_seeds) if _seeds else None


def capture_environment(
    *, argv: Sequence[str] | None = None, cwd: str | os.PathLike[str] | None = None
) -> RunEnvironment:
    """This process's environment now (``argv``: default ``sys.argv``; ``cwd``: the current folder).

    Never raises: a part that cannot be read is recorded empty.
    """
    return RunEnvironment(
        captured_at=datetime.now(UTC),
        git=_safely(lambda: _code_state(cwd), GitState(problem="could not be read")),
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        packages=_safely(installed_packages, MappingProxyType({})),
        argv=_safely(lambda: redact_argv(sys.argv if argv is None else argv), ()),
        hostname=_safely(socket.gethostname, None),
        os=_safely(_operating_system, None),
        platform=_safely(platform.platform, None),
        hardware=_safely(_hardware, None),
        seeds=dict(_seeds),
    )


def _operating_system() -> str:
    return f"{platform.system()} {platform.release()}".strip()


def _safely(read: Callable[[], T], fallback: T) -> T:
    try:
        return read()
    except Exception:  # a record with a gap beats a run that fails to start
        logger.debug("capturing the environment: a part could not be read", exc_info=True)
        return fallback


# -- git -------------------------------------------------------------------------------------


def _code_state(cwd: str | os.PathLike[str] | None) -> GitState:
    """The working tree of ``cwd``; outside one, that of the folder of the script being run."""
    state = git_state(cwd)
    if state.problem != "not a git repository" or cwd is not None:
        return state
    script = _main_folder()
    return state if script is None else git_state(script)


def _main_folder() -> str | None:
    """The folder of the script this process runs (``python path/train.py``), if any."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not isinstance(main_file, str) or not os.path.isfile(main_file):
        return None
    return os.path.dirname(os.path.abspath(main_file))


def git_state(cwd: str | os.PathLike[str] | None = None) -> GitState:
    """The commit, branch and changes of the working tree at ``cwd`` (one or two ``git`` calls)."""
    status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=normal"], cwd)
    if isinstance(status, GitState):
        return status
    commit = branch = None
    dirty = False
    untracked = 0
    for line in status.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            commit = line.removeprefix("# branch.oid ").strip()
        elif line.startswith("# branch.head "):
            branch = line.removeprefix("# branch.head ").strip()
        elif line.startswith("? "):
            untracked += 1
        elif line[:2] in ("1 ", "2 ", "u "):
            dirty = True
    if commit is None or commit == "(initial)":
        return GitState(
            branch=branch, dirty=dirty, untracked_files=untracked, problem="no commit yet"
        )
    if branch == "(detached)":
        branch = None
    diff = b""
    if dirty:
        found = _git(["diff", "HEAD", "--no-ext-diff", "--no-color", "--no-textconv"], cwd)
        if isinstance(found, GitState):
            return GitState(commit=commit, branch=branch, dirty=True, problem=found.problem)
        diff = found
    return GitState(
        commit=commit,
        branch=branch,
        dirty=dirty,
        diff_sha256=hashlib.sha256(diff).hexdigest(),
        untracked_files=untracked,
    )


def _git(arguments: list[str], cwd: str | os.PathLike[str] | None) -> bytes | GitState:
    """``git``'s output, or a state saying why there is none."""
    # no optional locks: a run starting must never block, or be blocked by, the user's git
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *arguments],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return GitState(problem="git is not installed")
    except subprocess.TimeoutExpired:
        return GitState(problem=f"git took longer than {GIT_TIMEOUT_S:g} s")
    except OSError as exc:
        return GitState(problem=f"git could not run: {exc.strerror or exc}")
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace")
        if "not a git repository" in message:
            return GitState(problem="not a git repository")
        return GitState(problem=f"git failed: {' '.join(message.split())[:200]}")
    return done.stdout


# -- the command line --------------------------------------------------------------------------


def redact_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """``argv`` with the values of secret-looking arguments and URLs' credentials replaced.

    A secret-looking argument's name contains token, password, passwd, secret
    or key: ``--api-key=abc`` and ``db.password=abc`` keep their names,
    ``--token abc`` loses the next argument (unless it is another ``--option``).
    """
    redacted: list[str] = []
    value_is_secret = False
    for argument in map(str, argv):
        if value_is_secret:
            value_is_secret = False
            if not argument.startswith("--"):
                redacted.append(REDACTED)
                continue
        name, equals, _ = argument.partition("=")
        if _SECRET_NAME.search(name):
            if equals:
                redacted.append(f"{name}={REDACTED}")
                continue
            if argument.startswith("-"):
                value_is_secret = True
        redacted.append(_URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", argument))
    return tuple(redacted)


# -- packages and hardware: the same for the life of the process --------------------------------


@functools.cache
def installed_packages() -> Mapping[str, str]:
    """Every installed distribution's normalised name → its version (the first on the path)."""
    found: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name, version = _name_and_version(distribution)
        if name:
            found.setdefault(normalised_name(name), version)
    return MappingProxyType(dict(sorted(found.items())))


def normalised_name(name: str) -> str:
    """A distribution's name as PEP 503 compares them: ``PyYAML``, ``pyyaml`` → ``pyyaml``."""
    return re.sub(r"[-_.]+", "-", name).lower()


# A wheel's metadata folder is {name}-{version}.dist-info, neither part holding a "-"
_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


def _name_and_version(distribution: importlib.metadata.Distribution) -> tuple[str, str]:
    # Parsing every METADATA file takes ~0.1 s for 200 packages; the folder's name
    # says the same for wheels. Anything else (an .egg-info) is read in full.
    folder = getattr(distribution, "_path", None)
    found = _DIST_INFO.match(getattr(folder, "name", ""))
    if found is not None:
        return found["name"], found["version"]
    return distribution.metadata["Name"] or "", distribution.version or ""


@functools.cache
def _machine() -> tuple[str | None, int | None, int | None]:
    return _cpu_model(), os.cpu_count(), _memory_bytes()


def _hardware() -> Hardware:
    cpu_model, cpu_count, memory_bytes = _machine()
    gpus, note = _gpus()
    return Hardware(
        cpu_model=cpu_model,
        cpu_count=cpu_count,
        memory_bytes=memory_bytes,
        gpus=gpus,
        gpu_note=note,
    )


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor", "cpu model"):
                    return value.strip() or None
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    return int(psutil.virtual_memory().total)


def _gpus() -> tuple[tuple[Gpu, ...], str]:
    """The GPUs torch sees, if this process imported torch; else what NVML sees, if installed.

    Importing torch only to look takes seconds: a process that does not use
    torch gets NVML's answer (``pynvml``), or none.
    """
    torch: Any = sys.modules.get("torch")
    if torch is not None:
        return _torch_gpus(torch)
    if importlib.util.find_spec("pynvml") is not None:
        return _nvml_gpus()
    return (), "torch not imported and pynvml not installed: GPUs not looked up"


@functools.cache
def _torch_gpus(torch: Any) -> tuple[tuple[Gpu, ...], str]:
    if not torch.cuda.is_available():
        return (), "CUDA is not available"
    gpus = []
    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        gpus.append(Gpu(name=str(properties.name), memory_bytes=int(properties.total_memory)))
    return tuple(gpus), "torch.cuda"


@functools.cache
def _nvml_gpus() -> tuple[tuple[Gpu, ...], str]:
    import pynvml  # type: ignore[import-untyped, unused-ignore]

    try:
        pynvml.nvmlInit()
    except Exception:
        return (), "no NVIDIA driver answered"
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            text = name.decode() if isinstance(name, bytes) else str(name)
            gpus.append(Gpu(name=text, memory_bytes=int(memory.total)))
        return tuple(gpus), "NVML"
    finally:
        pynvml.nvmlShutdown()


# -- seeds -------------------------------------------------------------------------------------


def seed_everything(seed: int) -> dict[str, int]:
    """Seed Python's ``random``, NumPy's global generator and torch (when installed) with ``seed``.

    Returns what was seeded (``{"random": seed, "numpy": seed, "torch": seed}``).
    The runs open in this process record these seeds, and so do those it starts
    afterwards; ``ActiveRun.set_seed`` records them on its run alone.
    """
    seeded = seed_process(seed)
    for handle in list(_open_runs):
        try:
            handle._record_seeds(seeded)
        except Exception:  # seeding is done; a run that cannot hear of it says so in the log
            logger.warning("run %s: the seeds could not be recorded", handle.id, exc_info=True)
    return seeded


def remember_open_run(handle: _OpenRun) -> None:
    """Record the seeds :func:`seed_everything` sets on ``handle``'s run until it is forgotten."""
    _open_runs.add(handle)


def forget_open_run(handle: _OpenRun) -> None:
    """Stop recording seeds on ``handle``'s run (it was closed)."""
    _open_runs.discard(handle)


def seed_process(seed: int) -> dict[str, int]:
    """Seed ``random``, NumPy and torch, remembered for runs started later; what was seeded."""
    value = check_seed(seed)
    random.seed(value)
    seeded = {"random": value}
    import numpy as np

    np.random.seed(value)  # the legacy global generator: what most libraries draw from
    seeded["numpy"] = value
    if "torch" in sys.modules or importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(value)  # every device's generator, CUDA's included
        seeded["torch"] = value
    _seeds.update(seeded)
    return seeded


def process_seeds() -> dict[str, int]:
    """The seeds :func:`seed_everything` set in this process so far."""
    return dict(_seeds)
