"""`python -m loan_default.serving`: the API on settings.API_HOST:API_PORT (`make serve`)."""

import logging
import os

import uvicorn

from loan_default import settings

THREAD_SETTINGS = (
    "POLARS_MAX_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def main() -> None:
    # Before polars, numpy or torch are imported (uvicorn imports the app below).
    for name in THREAD_SETTINGS:
        os.environ.setdefault(name, str(settings.API_SCORING_THREADS))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        "loan_default.serving.app:app",
        host=settings.API_HOST,
        port=settings.API_PORT,
        workers=1,
        log_level="info",
    )


if __name__ == "__main__":
    main()
