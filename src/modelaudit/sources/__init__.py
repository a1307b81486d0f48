"""Remote sources (Hugging Face, S3, GCS, R2, MLflow, JFrog, DVC, HTTPS) resolve to local files."""

from __future__ import annotations

REMOTE_PREFIXES = ("hf://", "s3://", "gs://", "r2://", "models:/", "http://", "https://")


def is_remote(target: str) -> bool:
    return target.startswith(REMOTE_PREFIXES)


def unsupported_message(target: str) -> str:
    return (f"remote source {target} cannot be fetched by this version of modelaudit; "
            "download the model and scan the local files")
