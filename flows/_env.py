"""Environment defaults applied before prefect/mlflow/dvc are imported: no telemetry, no server needed."""
import os

_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_HOME": os.path.join(os.getcwd(), ".prefect"),
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    # the ephemeral API runs migrations on a new PREFECT_HOME; on a busy 2-core machine that exceeds the default
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "GIT_PYTHON_REFRESH": "quiet",
    "TQDM_DISABLE": "1" if os.environ.get("CI") else "",
}
for _k, _v in _DEFAULTS.items():
    if _v:
        os.environ.setdefault(_k, _v)
