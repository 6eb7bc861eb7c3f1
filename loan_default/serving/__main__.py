"""`python -m loan_default.serving`: the API on settings.API_HOST:API_PORT (`make serve`)."""

import logging
import os

import uvicorn

from loan_default import settings


def serving_cpus(setting: str, allowed: set[int]) -> set[int]:
    """The CPUs named by `setting` (see settings.API_CPUS), among those `allowed`."""
    if setting == "all":
        return allowed
    if setting == "last":
        return {max(allowed)}
    try:
        cpus = {int(cpu) for cpu in setting.split(",")}
    except ValueError:
        raise ValueError(
            f"LOAN_DEFAULT_API_CPUS={setting}: expected 'last', 'all' or CPU numbers such as 0,1"
        ) from None
    if not cpus <= allowed:
        raise ValueError(f"LOAN_DEFAULT_API_CPUS={setting}: this process may use only {allowed}")
    return cpus


def main() -> None:
    # Before polars, numpy or torch are imported (uvicorn imports the app below).
    settings.cap_scoring_threads()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # A request hands work between threads dozens of times (polars' pool, OpenMP). On one CPU
    # each hand-off is a switch on that CPU; across CPUs it wakes an idle one, which on a VM
    # is a slow wake-up every time. Scale out with one pinned server per CPU.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, serving_cpus(settings.API_CPUS, os.sched_getaffinity(0)))
    else:  # macOS and Windows have no CPU affinity call: the server runs unpinned
        logging.getLogger("loan_default.serving").info("CPU pinning unavailable here; unpinned")
    uvicorn.run(
        "loan_default.serving.app:app",
        host=settings.API_HOST,
        port=settings.API_PORT,
        workers=1,
        log_level="info",
    )


if __name__ == "__main__":
    main()
