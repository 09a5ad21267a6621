"""Building blocks every capability uses: key, buckets, network, functions, bundling, queues, providers."""

from llmops.constructs.core.alarms import api_alarms, dead_letter_alarm
from llmops.constructs.core.custom_resource import custom_resource_provider
from llmops.constructs.core.dead_letter_queue import DeadLetterQueue
from llmops.constructs.core.lambda_bundle import BundleError, LambdaBundle
from llmops.constructs.core.log_retention import retention_days
from llmops.constructs.core.network import PlatformNetwork
from llmops.constructs.core.platform_function import PlatformFunction
from llmops.constructs.core.platform_key import PlatformKey
from llmops.constructs.core.secure_bucket import AccessLogBucket, SecureBucket

__all__ = [
    "AccessLogBucket", "BundleError", "DeadLetterQueue", "LambdaBundle", "PlatformFunction", "PlatformKey",
    "PlatformNetwork", "SecureBucket", "api_alarms", "custom_resource_provider", "dead_letter_alarm", "retention_days",
]
