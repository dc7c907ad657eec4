"""Where the torch work runs: device choice and CPU thread count."""
from __future__ import annotations

import logging
import os

from .errors import InputError

log = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may use (respects CPU affinity / container limits where visible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure_threads(num_threads: int | None = None) -> int:
    """Match torch's intra-op threads to the cores (or SPECTRAMORPH_THREADS, for machines shared
    with other jobs, where one thread per core oversubscribes); returns the count used."""
    import torch
    env = os.environ.get("SPECTRAMORPH_THREADS", "").strip()
    n = int(num_threads or (int(env) if env.isdigit() and int(env) > 0 else available_cores()))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def mps_available() -> bool:
    import torch
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto"):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps' -> torch.device; a missing accelerator is an input error."""
    import torch
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"config key 'device' is '{name}' but torch sees no CUDA GPU here "
                             f"(torch {torch.__version__}); use device: auto or cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"config key 'device' is '{name}' but only {torch.cuda.device_count()} "
                             f"CUDA device(s) exist")
        return dev
    if name == "mps":
        if not mps_available():
            raise InputError("config key 'device' is 'mps' but Apple's Metal backend is not available "
                             "here; use device: auto or cpu")
        return torch.device("mps")
    raise InputError(f"config key 'device' is '{name}'; allowed: auto, cpu, cuda, mps")


def describe(device) -> str:
    """A short human description of a torch device, for logs and benchmark tables."""
    import torch
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return dev.type


def single_thread_blas():
    """A context in which numpy/scipy's BLAS runs on one thread. For work on small matrices
    (the sensor fits: Cholesky and NNLS of a few hundred unknowns, hundreds of times): there a
    multithreaded OpenBLAS on a machine with other load spins instead of working -- measured
    here, a 300 x 300 Cholesky took 245 ms with two threads on a busy 2-core machine, 1.3 ms
    with one."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")
