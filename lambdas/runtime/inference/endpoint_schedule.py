"""Start or stop, now, an endpoint that runs on a stop/start schedule (``inference.*.schedule``).

``start`` does what the endpoint's start schedule would do: it reads the schedule's own
``CreateEndpoint`` request (the endpoint config and tags of the deployed stack) and sends it, so the
endpoint comes back exactly as the next scheduled start would bring it. Run it before a deploy that
changes a stopped endpoint (docs/inference.md); ``stop`` deletes the endpoint as the stop schedule does.
"""

from __future__ import annotations

import json
from typing import Any


class ScheduleError(RuntimeError):
    pass


def _status(sagemaker: Any, endpoint: str) -> str | None:
    try:
        return sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    except sagemaker.exceptions.ClientError as err:
        if err.response["Error"]["Code"] == "ValidationException" and "Could not find endpoint" in err.response["Error"]["Message"]:
            return None
        raise


def _scheduled_request(scheduler: Any, endpoint: str, what: str) -> dict[str, Any]:
    try:
        schedule = scheduler.get_schedule(Name=f"{endpoint}-{what}")
    except scheduler.exceptions.ResourceNotFoundException:
        raise ScheduleError(f"{endpoint} has no {what} schedule ({endpoint}-{what}): is inference.*.schedule enabled "
                            "and deployed for it?") from None
    return json.loads(schedule["Target"]["Input"])


def start_endpoint(sagemaker: Any, scheduler: Any, endpoint: str, *, wait: bool = False) -> str:
    """Create the endpoint from its start schedule's request unless it exists; returns what happened."""
    request = _scheduled_request(scheduler, endpoint, "start")
    status = _status(sagemaker, endpoint)
    if status is None:
        sagemaker.create_endpoint(**request)
        outcome = f"{endpoint}: creating from {request['EndpointConfigName']}"
    elif status == "Deleting":
        raise ScheduleError(f"{endpoint} is being deleted (a stop is under way); start it again when that finishes")
    else:
        outcome = f"{endpoint}: already {status}"
    if wait:
        # Up to an hour: an LLM's container may take its whole health-check timeout to load.
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 30, "MaxAttempts": 120})
        outcome += "; InService"
    return outcome


def stop_endpoint(sagemaker: Any, scheduler: Any, endpoint: str) -> str:
    _scheduled_request(scheduler, endpoint, "stop")  # only endpoints that are on a schedule
    status = _status(sagemaker, endpoint)
    if status is None:
        return f"{endpoint}: already stopped"
    sagemaker.delete_endpoint(EndpointName=endpoint)
    return f"{endpoint}: deleting (was {status})"
