"""`python -m loan_default.serving`: the API on settings.API_HOST:API_PORT (`make serve`)."""

import logging

import uvicorn

from loan_default import settings


def main() -> None:
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
