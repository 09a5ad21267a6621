"""AWS Regions the configuration accepts: the one list, kept here.

A region missing from this list (one AWS opened after it was written) is accepted only with
``allow_unlisted_region: true`` on the environment, so a typo such as ``us-east-l`` fails at once.
Stdlib only: synth-time code must not import botocore for its endpoint data.
"""

from __future__ import annotations

AWS_REGIONS: tuple[str, ...] = (
    # commercial partition
    "af-south-1",
    "ap-east-1", "ap-east-2",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-6", "ap-southeast-7",
    "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-central-2",
    "eu-north-1",
    "eu-south-1", "eu-south-2",
    "eu-west-1", "eu-west-2", "eu-west-3",
    "il-central-1",
    "me-central-1", "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    # GovCloud and China partitions
    "us-gov-east-1", "us-gov-west-1",
    "cn-north-1", "cn-northwest-1",
)
